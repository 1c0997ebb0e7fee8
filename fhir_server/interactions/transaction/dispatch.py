"""An entry's request (method and url) → an interaction of the interaction table.

The same table serves the REST routes, the CapabilityStatement and this dispatcher, so a Bundle
entry can do exactly what a REST request can (http.html#transaction: "the url is relative to the
root", with the same semantics as the equivalent REST call).

``request.url`` is relative to the FHIR base (a leading ``/`` is tolerated). An absolute URL
starting with this server's base is made relative; any other absolute URL is read by its trailing
``[type]/…`` path, whatever its base, as HAPI does (the official example ``Bundle-ussg-fht`` PUTs
to ``http://hl7.org/fhir/us/sdc/Questionnaire/54127-6``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl

from fhir_server.core import r4
from fhir_server.core.errors import FeatureNotSupported, InvalidRequest
from fhir_server.interactions.table import INTERACTIONS

_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*(/.*)?")
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Target:
    """What an entry asks for: the handler name of the table (``read``, ``update-conditional``,
    ``search-compartment``…), its path values and the raw query string."""

    handler: str
    path: dict[str, str] = field(default_factory=dict)
    query: str = ""

    @property
    def type(self) -> str:
        return self.path.get("type", "")

    @property
    def id(self) -> str:
        return self.path.get("id", "")

    @property
    def params(self) -> list[tuple[str, str]]:
        return [
            (k, v)
            for k, v in parse_qsl(self.query, keep_blank_values=True)
            if k not in ("_format", "_pretty")
        ]


@cache
def _routes() -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    """(method, handler, compiled path) for every route of the table, in table order."""
    out = []
    for route in INTERACTIONS:
        segments = (
            f"(?P<{m.group(1)}>[^/]+)" if (m := _PARAM.fullmatch(part)) else re.escape(part)
            for part in route.path.split("/")
        )
        out.append((route.method, route.handler_name, re.compile("/".join(segments))))
    return tuple(out)


def route(method: str, url: str, base_url: str) -> Target:
    """The interaction an entry's request asks for; 400 if none, naming ``request.url``."""
    path, _, query = url.partition("?")
    for candidate in _relative_paths(path, base_url):
        target = _match(method, candidate, query)
        if target is not None:
            return target
    if "$" in path:
        raise FeatureNotSupported(
            "Operations ($name) are not served in a batch or transaction by this server",
            expression=["request.url"],
        )
    raise InvalidRequest(
        f"request.url does not name a FHIR interaction this server serves with {method} "
        "(e.g. Patient, Patient/123, Patient?identifier=system|value)",
        expression=["request.url"],
    )


def _relative_paths(path: str, base_url: str) -> list[str]:
    base = base_url.rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        return [path[len(base) :].strip("/")]
    absolute = _ABSOLUTE.fullmatch(path)
    if absolute is None:
        return [path.strip("/")]
    segments = (absolute.group(1) or "").strip("/").split("/")
    # Other bases: the trailing part that starts with a resource type (longest first).
    return ["/".join(segments[i:]) for i, name in enumerate(segments) if r4.is_resource_type(name)]


def _match(method: str, path: str, query: str) -> Target | None:
    verb = "GET" if method == "HEAD" else method
    for route_method, handler, pattern in _routes():
        if route_method != verb:
            continue
        found = pattern.fullmatch(path)
        if found is None:
            continue
        values = found.groupdict()
        if "type" in values and not r4.is_resource_type(values["type"]):
            continue
        if "ctype" in values and not r4.is_resource_type(values["ctype"]):
            continue
        if handler in ("search-type", "search-system") and method == "POST":
            continue  # POST …/_search takes a form body, which an entry cannot carry
        if handler == "batch-transaction":
            continue  # a Bundle to process inside a Bundle: not an interaction of an entry
        return Target(handler, values, query)
    return None
