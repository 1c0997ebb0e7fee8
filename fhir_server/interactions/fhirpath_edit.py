"""Changes to FHIR JSON in place, keeping each primitive's ``_name`` sibling in step.

In FHIR JSON a primitive's id and extensions sit beside it: ``birthDate`` + ``_birthDate``, and
for a repeating primitive two arrays aligned item by item, ``null`` filling the gaps
(http://hl7.org/fhir/R4/json.html#primitive). These helpers insert, move, replace and remove an
element's value together with that sibling, and remove what a removal leaves empty (an object
with no members is not valid FHIR JSON), up to the resource.
"""

from __future__ import annotations

from typing import Any

from fhir_server.interactions.fhirpath_locate import Location, Node, is_primitive


class EditError(ValueError):
    """The JSON does not have the shape the element tables promise."""


def _lists(container: dict[str, Any], key: str) -> tuple[list[Any], list[Any] | None]:
    """The value array of ``key`` (created if missing) and its ``_key`` array (or None), padded
    to the same length."""
    values = container.get(key)
    if values is None:
        values = container[key] = []
    if not isinstance(values, list):
        raise EditError(f"'{key}' holds a single value where a list was expected")
    shadows = container.get("_" + key)
    shadows = shadows if isinstance(shadows, list) else None
    length = max(len(values), len(shadows or ()))
    values.extend([None] * (length - len(values)))
    if shadows is not None:
        shadows.extend([None] * (length - len(shadows)))
    return values, shadows


def _tidy(container: dict[str, Any], key: str) -> None:
    """Drop a ``_key`` array of nulls, and the element when nothing of it is left."""
    shadows = container.get("_" + key)
    if isinstance(shadows, list) and all(s is None for s in shadows):
        del container["_" + key]
        shadows = None
    values = container.get(key)
    if isinstance(values, list) and shadows is None and all(v is None for v in values):
        del container[key]


def list_length(container: dict[str, Any], key: str) -> int:
    values, shadows = container.get(key), container.get("_" + key)
    return max(
        len(values) if isinstance(values, list) else 0,
        len(shadows) if isinstance(shadows, list) else 0,
    )


def list_insert(
    container: dict[str, Any], key: str, index: int, value: Any, shadow: dict[str, Any] | None
) -> None:
    """Insert an item (0 <= index <= length) into a repeating element."""
    values, shadows = _lists(container, key)
    values.insert(index, value)
    if shadows is not None:
        shadows.insert(index, shadow)
    elif shadow is not None:
        container["_" + key] = [None] * len(values)
        container["_" + key][index] = shadow
    _tidy(container, key)


def list_move(container: dict[str, Any], key: str, source: int, destination: int) -> None:
    """Move the item at ``source`` so that it ends at ``destination`` (both < length)."""
    values, shadows = _lists(container, key)
    values.insert(destination, values.pop(source))
    if shadows is not None:
        shadows.insert(destination, shadows.pop(source))


def put(container: dict[str, Any], key: str, value: Any, shadow: dict[str, Any] | None) -> None:
    """Set a single-valued element (``value`` None: a primitive with only an id/extensions)."""
    if value is not None:
        container[key] = value
    if shadow is not None:
        container["_" + key] = shadow


def replace_at(location: Location, key: str, value: Any, shadow: dict[str, Any] | None) -> None:
    """Replace the element at ``location``, its id and extensions included; ``key`` differs from
    the old key when a choice element changes type (``valueQuantity`` -> ``valueString``)."""
    container, index = location.container, location.index
    if index is None:
        for old in (location.key, "_" + location.key):
            container.pop(old, None)
        put(container, key, value, shadow)
        return
    values, shadows = _lists(container, location.key)
    values[index] = value
    if shadows is not None:
        shadows[index] = shadow
    elif shadow is not None:
        container["_" + key] = [None] * len(values)
        container["_" + key][index] = shadow
    _tidy(container, location.key)


def _remove_slot(location: Location) -> None:
    container, key, index = location.container, location.key, location.index
    if index is None:
        container.pop(key, None)
        container.pop("_" + key, None)
        return
    values, shadows = _lists(container, key)
    values.pop(index)
    if shadows is not None:
        shadows.pop(index)
    _tidy(container, key)


def _drop_shadow(location: Location) -> None:
    """Remove the (now empty) ``_key`` entry of the primitive at ``location``."""
    container, key, index = location.container, location.key, location.index
    if index is None:
        container.pop("_" + key, None)
        return
    shadows = container.get("_" + key)
    if isinstance(shadows, list) and index < len(shadows):
        shadows[index] = None
    _tidy(container, key)


def _value_at(location: Location) -> Any:
    value = location.container.get(location.key)
    if location.index is None:
        return value
    if isinstance(value, list) and location.index < len(value):
        return value[location.index]
    return None


def remove_at(location: Location) -> None:
    """Remove the element at ``location``, then each container that this leaves empty."""
    _remove_slot(location)
    while not location.container and location.parent is not None:
        parent = location.parent
        if location.in_shadow and _value_at(parent) is not None:
            _drop_shadow(parent)  # the primitive keeps its value, without id or extensions
            return
        _remove_slot(parent)
        location = parent


def children_object(node: Node) -> dict[str, Any]:
    """The JSON object that holds ``node``'s child elements; for a primitive, its ``_name``
    object (created when missing)."""
    if not is_primitive(node.ctx):
        if not isinstance(node.value, dict):
            raise EditError("the element is not a JSON object")
        return node.value
    location = node.location
    if location is None:
        raise EditError("a computed value has no elements")
    container, key = location.container, "_" + location.key
    if location.index is None:
        shadow = container.setdefault(key, {})
    else:
        values, shadows = _lists(container, location.key)
        if shadows is None:
            shadows = container[key] = [None] * len(values)
        if shadows[location.index] is None:
            shadows[location.index] = {}
        shadow = shadows[location.index]
    if not isinstance(shadow, dict):
        raise EditError(f"'{key}' is not a JSON object")
    return shadow
