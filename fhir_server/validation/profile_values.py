"""Value-level checks of the profile walk: fixed and pattern values, discriminator paths.

``fixed[x]``: the value is exactly the fixed one. ``pattern[x]``: every element of the pattern is in
the value, recursively; a pattern array is met when each of its items is met by some item of the
value's array (http://hl7.org/fhir/R4/elementdefinition-definitions.html#ElementDefinition.pattern_x_).
Primitive extensions (``_name``) take no part in either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def meets_fixed(value: Any, fixed: Any) -> bool:
    if isinstance(fixed, dict):
        if not isinstance(value, dict):
            return False
        keys = {k for k in value if not k.startswith("_")}
        fixed_keys = {k for k in fixed if not k.startswith("_")}
        return keys == fixed_keys and all(meets_fixed(value[k], fixed[k]) for k in fixed_keys)
    if isinstance(fixed, list):
        return (
            isinstance(value, list)
            and len(value) == len(fixed)
            and all(meets_fixed(v, f) for v, f in zip(value, fixed, strict=True))
        )
    return _same_primitive(value, fixed)


def meets_pattern(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(
            k in value and meets_pattern(value[k], p)
            for k, p in pattern.items()
            if not k.startswith("_")
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(meets_pattern(v, p) for v in items) for p in pattern)
    return _same_primitive(value, pattern)


def _same_primitive(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return value == expected
    return type(value) is type(expected) and value == expected


def navigate(value: Any, path: str) -> Iterator[Any]:
    """The values a simple FHIRPath (``coding.code``, ``url``, ``$this``) selects in JSON; arrays
    are flattened, ``ofType(X)`` and ``extension('url')`` are understood."""
    current: list[Any] = [value]
    for step in _steps(path):
        found: list[Any] = []
        for item in current:
            found.extend(_step(item, step))
        current = found
    yield from current


def _steps(path: str) -> list[str]:
    steps, depth, start = [], 0, 0
    for i, ch in enumerate(path):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            steps.append(path[start:i])
            start = i + 1
    steps.append(path[start:])
    return [s for s in steps if s and s != "$this"]


def _step(item: Any, step: str) -> list[Any]:
    if not isinstance(item, dict):
        return []
    if step.startswith("extension(") and step.endswith(")"):
        url = step[len("extension(") : -1].strip("'\"")
        return [e for e in item.get("extension", []) if isinstance(e, dict) and e.get("url") == url]
    if step.startswith("ofType(") and step.endswith(")"):
        return [item]  # the type was chosen by the JSON name already
    got = item.get(step)
    if got is None:
        return []
    return got if isinstance(got, list) else [got]
