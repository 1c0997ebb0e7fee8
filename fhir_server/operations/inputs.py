"""The input parameters of one operation call, from a GET query or a POST ``Parameters`` body
(http://hl7.org/fhir/R4/operations.html#request).

In a query every value is text; in a Parameters resource a parameter carries ``value[x]``, a
``resource`` or ``part`` s. The getters convert and check, and every error names the parameter
(OperationOutcome ``issue.expression``) without echoing the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fhir_server.core.errors import InvalidRequest

_PRIMITIVE_KEYS = (
    "valueString", "valueCode", "valueUri", "valueUrl", "valueCanonical", "valueId",
    "valueBoolean", "valueInteger", "valueDateTime", "valueDate", "valueMarkdown",
    "valueDecimal", "valueUnsignedInt", "valuePositiveInt", "valueInstant", "valueOid",
)  # fmt: skip


def bad(name: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"Parameter '{name}': {what}", expression=[name])


class Inputs:
    """Parameter name -> the values given, in order (query text or Parameters entries)."""

    def __init__(self, values: dict[str, list[Any]]) -> None:
        self._values = values

    @classmethod
    def from_query(cls, query: Iterable[tuple[str, str]]) -> Inputs:
        values: dict[str, list[Any]] = {}
        for name, value in query:
            values.setdefault(name, []).append(value)
        return cls(values)

    @classmethod
    def from_parameters(cls, body: dict[str, Any]) -> Inputs:
        if body.get("resourceType") != "Parameters":
            raise InvalidRequest(
                "The body of an operation call must be a Parameters resource",
                expression=["resourceType"],
            )
        values: dict[str, list[Any]] = {}
        for i, parameter in enumerate(body.get("parameter", ())):
            name = parameter.get("name") if isinstance(parameter, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidRequest(
                    "Every Parameters.parameter needs a name",
                    expression=[f"Parameters.parameter[{i}]"],
                )
            values.setdefault(name, []).append(parameter)
        return cls(values)

    @classmethod
    def of_resource(
        cls, name: str, resource: dict[str, Any], query: Iterable[tuple[str, str]] = ()
    ) -> Inputs:
        """A POST body that is the operation's single resource input, with the other
        parameters from the query string."""
        inputs = cls.from_query(query)
        inputs._values[name] = [{"name": name, "resource": resource}]
        return inputs

    def names(self) -> list[str]:
        return list(self._values)

    def check_known(self, allowed: Iterable[str], operation: str) -> None:
        known = set(allowed)
        unknown = [n for n in self._values if n not in known]
        if unknown:
            raise InvalidRequest(
                f"Unknown parameter '{unknown[0]}' for ${operation}; "
                f"its parameters are: {', '.join(sorted(known))}",
                expression=[unknown[0]],
            )

    def _one(self, name: str) -> Any:
        given = self._values.get(name, [])
        if len(given) > 1:
            raise bad(name, "may be given only once")
        return given[0] if given else None

    # --- typed getters -------------------------------------------------------------------

    def string(self, name: str) -> str | None:
        """A primitive value as text (code, uri, string, canonical…)."""
        raw = self._one(name)
        if raw is None or isinstance(raw, str):
            return raw or None
        for key in _PRIMITIVE_KEYS:
            if key in raw:
                value = raw[key]
                return value if isinstance(value, str) else str(value).lower()
        raise bad(name, "expected a primitive value (value[x])")

    def strings(self, name: str) -> list[str]:
        out = []
        for raw in self._values.get(name, []):
            value = Inputs({name: [raw]}).string(name)
            if value is not None:
                out.extend(value.split(",") if isinstance(raw, str) else [value])
        return out

    def required(self, name: str) -> str:
        value = self.string(name)
        if value is None:
            raise bad(name, "is required")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.string(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise bad(name, "expected true or false")
        return value == "true"

    def integer(self, name: str) -> int | None:
        value = self.string(name)
        if value is None:
            return None
        if not value.isdigit() or not value.isascii():
            raise bad(name, "expected a whole number of 0 or more")
        return int(value)

    def complex(self, name: str, key: str) -> dict[str, Any] | None:
        """``valueCoding``/``valueCodeableConcept``: only in a POSTed Parameters."""
        raw = self._one(name)
        if raw is None:
            return None
        value = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(value, dict):
            raise bad(name, f"expected {key} (send it in a POSTed Parameters resource)")
        return value

    def resource(self, name: str) -> dict[str, Any] | None:
        raw = self._one(name)
        if raw is None:
            return None
        value = raw.get("resource") if isinstance(raw, dict) else None
        if not isinstance(value, dict):
            raise bad(name, "expected a resource (send it in a POSTed Parameters resource)")
        return value


def parameters(items: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A Parameters resource from (name, value part) pairs."""
    return {"resourceType": "Parameters", "parameter": [{"name": n, **v} for n, v in items]}
