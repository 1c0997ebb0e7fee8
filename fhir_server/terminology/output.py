"""The ValueSet ``$expand`` returns (http://hl7.org/fhir/R4/valueset-operation-expand.html):
the value set with an ``expansion`` (identifier, timestamp, total, offset, the parameters that
shaped it, and the codes of the requested page)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fhir_server.terminology.expand import Entry, Expansion


@dataclass(frozen=True, slots=True)
class ExpandOptions:
    """``filter``: text the display or code must contain (case-insensitive); ``count``/
    ``offset``: paging; ``active_only``: leave out inactive codes."""

    filter: str | None = None
    count: int | None = None
    offset: int = 0
    active_only: bool = False
    include_designations: bool = False


def selected(expansion: Expansion, options: ExpandOptions) -> list[Entry]:
    entries = list(expansion.entries)
    if options.active_only:
        entries = [e for e in entries if not e.inactive]
    if options.filter:
        text = options.filter.lower()
        entries = [
            e for e in entries if text in e.code.lower() or text in (e.display or "").lower()
        ]
    return entries


def expanded_value_set(
    value_set: dict[str, Any], expansion: Expansion, options: ExpandOptions, timestamp: str
) -> dict[str, Any]:
    entries = selected(expansion, options)
    page = entries[options.offset :]
    if options.count is not None:
        page = page[: options.count]
    out = {k: v for k, v in value_set.items() if k not in ("expansion", "text")}
    out["resourceType"] = "ValueSet"
    result: dict[str, Any] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": timestamp,
        "total": len(entries),
        "offset": options.offset,
    }
    parameters = _parameters(expansion, options)
    if parameters:
        result["parameter"] = parameters
    if page:
        result["contains"] = [_contains(e, options.include_designations) for e in page]
    out["expansion"] = result
    return out


def _parameters(expansion: Expansion, options: ExpandOptions) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if options.filter:
        out.append({"name": "filter", "valueString": options.filter})
    if options.count is not None:
        out.append({"name": "count", "valueInteger": options.count})
    if options.offset:
        out.append({"name": "offset", "valueInteger": options.offset})
    if options.active_only:
        out.append({"name": "activeOnly", "valueBoolean": True})
    if options.include_designations:
        out.append({"name": "includeDesignations", "valueBoolean": True})
    out += [{"name": "version", "valueUri": used} for used in expansion.used]
    if expansion.partial:
        out.append({"name": "limitedExpansion", "valueBoolean": True})
    return out


def _contains(entry: Entry, designations: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"system": entry.system}
    if entry.version:
        out["version"] = entry.version
    if entry.abstract:
        out["abstract"] = True
    if entry.inactive:
        out["inactive"] = True
    out["code"] = entry.code
    if entry.display:
        out["display"] = entry.display
    if designations and entry.designations:
        out["designation"] = list(entry.designations)
    return out
