"""v2 data types → FHIR data types (after the IG's CX[Identifier], XPN[HumanName],
XCN[Practitioner], CWE[CodeableConcept], EI[Identifier] maps), on escaped ER7 repetitions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fhir_server.hl7v2.er7 import Encoding, component_of
from fhir_server.hl7v2.mapping.tables import V2Tables

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOCAL_SYSTEM = "urn:fhir-server:hl7v2"  # + ":<namespace>": identifiers with no known system
DICOM_UID = "urn:dicom:uid"


class Parts:
    """The components of one escaped repetition: ``p[1]`` is component 1, unescaped."""

    __slots__ = ("_encoding", "_parts")

    def __init__(self, value: str, encoding: Encoding) -> None:
        self._parts = value.split(encoding.component) if value else []
        self._encoding = encoding

    def __getitem__(self, n: int) -> str:
        return component_of(self._parts[n - 1], self._encoding) if n <= len(self._parts) else ""

    def sub(self, n: int, s: int) -> str:
        if n > len(self._parts):
            return ""
        return component_of(self._parts[n - 1], self._encoding, 1, s)


def local_system(namespace: str) -> str:
    return f"{LOCAL_SYSTEM}:{quote(namespace, safe='.-_')}"


def authority_system(
    namespace: str, universal: str, universal_type: str, systems: dict[str, str] | Any
) -> str | None:
    """HD (assigning authority) → Identifier.system: the sender's configuration for the
    namespace id, else ``urn:oid:`` for an ISO universal id, else a local URN on the namespace."""
    if namespace and namespace in systems:
        return str(systems[namespace])
    if universal and universal_type.upper() == "ISO":
        return f"urn:oid:{universal}"
    if universal and universal_type.upper() in ("URI", "URL"):
        return universal
    if namespace:
        return local_system(namespace)
    return None


def identifier_cx(
    value: str, encoding: Encoding, systems: Any, fallback: str, tables: V2Tables
) -> dict[str, Any] | None:
    """CX → Identifier: CX.1 value, CX.4 system (per sender), CX.5 type (v2-0203)."""
    p = Parts(value, encoding)
    if not p[1]:
        return None
    identifier: dict[str, Any] = {
        "system": authority_system(p.sub(4, 1), p.sub(4, 2), p.sub(4, 3), systems) or fallback,
        "value": p[1],
    }
    kind = p[5]
    if kind:
        row = tables.lookup("identifier-type", kind)
        coding = {"system": V2_0203, "code": row["code"] if row else kind}
        if row and row.get("display"):
            coding["display"] = row["display"]
        identifier["type"] = {"coding": [coding]}
    return identifier


def identifier_ei(
    value: str, encoding: Encoding, kind: str, fallback: str, systems: Any = None
) -> dict[str, Any] | None:
    """EI → Identifier with type v2-0203 ``kind`` (PLAC, FILL, ACSN…); EI.2-4 give the system."""
    p = Parts(value, encoding)
    if not p[1]:
        return None
    system = authority_system(p[2], p[3], p[4], systems or {}) or fallback
    return {
        "type": {"coding": [{"system": V2_0203, "code": kind}]},
        "system": system,
        "value": p[1],
    }


def human_name(value: str, encoding: Encoding, tables: V2Tables, offset: int = 0) -> dict[str, Any]:
    """XPN (offset 0) or the name part of XCN (offset 1) → HumanName."""
    p = Parts(value, encoding)
    name: dict[str, Any] = {}
    family = p.sub(1 + offset, 1)
    if family:
        name["family"] = family
    given = [g for g in (p[2 + offset], p[3 + offset]) if g]
    if given:
        name["given"] = given
    suffix = [s for s in (p[4 + offset], p[6 + offset]) if s]
    if suffix:
        name["suffix"] = suffix
    if p[5 + offset]:
        name["prefix"] = [p[5 + offset]]
    use = tables.code("name-type", p[7 + (offset * 3 if offset else 0)]) if not offset else None
    if use:
        name["use"] = use
    return name


def codeable_concept(value: str, encoding: Encoding, tables: V2Tables) -> dict[str, Any] | None:
    """CWE/CE → CodeableConcept: .1-.3 first coding, .4-.6 second, .9 (or a display) text."""
    p = Parts(value, encoding)
    codings = []
    for code, display, system in ((p[1], p[2], p[3]), (p[4], p[5], p[6])):
        if not code:
            continue
        coding: dict[str, Any] = {"code": code}
        uri = tables.code("coding-system", system.upper()) if system else None
        if uri:
            coding["system"] = uri
        if display:
            coding["display"] = display
        codings.append(coding)
    text = p[9] or p[2] or p[5]
    if not codings and not text:
        return None
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return concept


def practitioner_parts(
    value: str, encoding: Encoding, tables: V2Tables, systems: Any, fallback: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """XCN → (Identifier or None, HumanName): XCN.1 id, XCN.9 authority, XCN.2-7 the name."""
    p = Parts(value, encoding)
    name = human_name(value, encoding, tables, offset=1)
    if not p[1]:
        return None, name
    system = authority_system(p.sub(9, 1), p.sub(9, 2), p.sub(9, 3), systems) or fallback
    identifier: dict[str, Any] = {"system": system, "value": p[1]}
    kind = p[13]
    if kind:
        identifier["type"] = {"coding": [{"system": V2_0203, "code": kind}]}
    return identifier, name


def display_name(name: dict[str, Any]) -> str:
    parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
    return " ".join(p for p in parts if p)


def token_value(identifier: dict[str, Any]) -> str:
    """``system|value`` escaped for a FHIR token search parameter."""

    def esc(text: str) -> str:
        return (
            text.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")
        )

    return f"{esc(identifier.get('system', ''))}|{esc(identifier['value'])}"


def search_token(identifier: dict[str, Any]) -> str:
    """``identifier=system|value`` for a conditional URL, escaped for FHIR search and the URL."""
    return "identifier=" + quote(token_value(identifier), safe="")
