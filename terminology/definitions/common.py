# ruff: noqa: RUF001  (Chinese official titles use full-width punctuation)
"""Canonical base, licence texts and builders shared by the terminology definitions."""

import json
from pathlib import Path

BASE = "https://telemedicine.example.org/fhir"
OUT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"
DATE = "2026-12-03"
PUBLISHER = "Telemedicine interoperability server project"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
PRIORITY = "http://hl7.org/fhir/request-priority"

CN_SOURCE = (
    "Remote Medical Services Management Norms (trial), 2018 (远程医疗服务管理规范（试行）, "
    "issued by the National Health Commission of the PRC with 国卫医发〔2018〕25号)"
)
RO_SOURCE = (
    "Romanian Ministry of Health, draft Order approving the Specific norms for the organisation "
    "and operation of teleradiology (Normele specifice de organizare și funcționare a "
    "teleradiologiei), published for public consultation (transparență decizională)"
)
OUR_LICENCE = (
    "The codes, English displays and definitions of this resource are authored by the "
    "telemedicine interoperability server project and dedicated to the public domain "
    "(CC0 1.0, https://creativecommons.org/publicdomain/zero/1.0/)."
)
CN_LICENCE = (
    " The Chinese designations quote or follow " + CN_SOURCE + ", an official document of a "
    "state organ: such documents are not protected by copyright (Copyright Law of the People's "
    "Republic of China, Article 5)."
)
RO_LICENCE = (
    " The Romanian designations quote or follow the " + RO_SOURCE + ", an official text of "
    "administrative nature: such texts are not protected by copyright (Romanian Law 8/1996 on "
    "copyright, Article 9)."
)
DCM_LICENCE = (
    " The DICOM codes and displays are from DICOM PS3.16 Content Mapping Resource "
    "(system http://dicom.nema.org/resources/ontology/DCM), Copyright © NEMA (National "
    "Electrical Manufacturers Association); DICOM® is NEMA's registered trademark. The DICOM "
    "Standard is published free of charge and its codes may be used to implement it."
)
SCT_LICENCE = (
    " This resource includes SNOMED CT® concept identifiers with a short display only. "
    "SNOMED CT is copyright of SNOMED International (formerly IHTSDO); using SNOMED CT requires "
    "an affiliate licence, free in SNOMED International member countries "
    "(https://www.snomed.org/get-snomed)."
)
FHIR_LICENCE = (
    " The HL7 FHIR code system http://hl7.org/fhir/request-priority is part of FHIR R4 "
    "(4.0.1), published by HL7 International under CC0 1.0."
)


def url(kind: str, rid: str) -> str:
    return f"{BASE}/{kind}/{rid}"


def header(kind: str, rid: str, name: str, title: str, description: str, copyright_: str) -> dict:
    return {
        "resourceType": kind,
        "id": rid,
        "url": url(kind, rid),
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "copyright": copyright_,
    }


def concept(code, display, definition=None, zh=None, ro=None, props=None, children=None):
    c = {"code": code, "display": display}
    if definition:
        c["definition"] = definition
    des = []
    if zh:
        des.append({"language": "zh", "value": zh})
    if ro:
        des.append({"language": "ro", "value": ro})
    if des:
        c["designation"] = des
    if props:
        c["property"] = props
    if children:
        c["concept"] = children
    return c


def prop(code, value):
    if isinstance(value, bool):
        return {"code": code, "valueBoolean": value}
    if isinstance(value, int):
        return {"code": code, "valueInteger": value}
    if code in ("rule",):
        return {"code": code, "valueString": value}
    return {"code": code, "valueCode": value}


RULE_PROPERTY = {
    "code": "rule",
    "uri": f"{BASE}/CodeSystem/property#rule",
    "description": "ID of the rule in the project's requirements catalogue (CN-…, RO-…) that this "
    "code encodes; repeated when several rules apply.",
    "type": "string",
}
NOT_SELECTABLE = {
    "code": "notSelectable",
    "uri": "http://hl7.org/fhir/concept-properties#notSelectable",
    "description": "A grouping concept that is not meant to be used in data itself.",
    "type": "boolean",
}


def codesystem(rid, name, title, description, copyright_, concepts, properties=(), hierarchy=None):
    cs = header("CodeSystem", rid, name, title, description, copyright_)
    cs["caseSensitive"] = True
    cs["valueSet"] = url("ValueSet", rid)
    if hierarchy:
        cs["hierarchyMeaning"] = hierarchy
    cs["content"] = "complete"
    cs["count"] = count(concepts)
    if properties:
        cs["property"] = list(properties)
    cs["concept"] = concepts
    return cs


def count(concepts):
    return sum(1 + count(c.get("concept", [])) for c in concepts)


def all_codes(concepts):
    for c in concepts:
        yield c
        yield from all_codes(c.get("concept", []))


def valueset(rid, name, title, description, copyright_, includes, excludes=None):
    vs = header("ValueSet", rid, name, title, description, copyright_)
    vs["immutable"] = False
    vs["compose"] = {"include": includes}
    if excludes:
        vs["compose"]["exclude"] = excludes
    return vs


def whole_system_vs(cs, description):
    return valueset(
        cs["id"],
        cs["name"],
        cs["title"],
        description,
        cs["copyright"],
        [{"system": cs["url"]}],
    )


def render(resource):
    """The file text of a resource: with its narrative, UTF-8 JSON, two-space indent."""
    return json.dumps(with_narrative(resource), ensure_ascii=False, indent=2) + "\n"


def _esc(text) -> str:
    from html import escape

    return escape(str(text), quote=False)


def _rows(resource) -> tuple[list[str], list[list[str]]]:
    kind = resource["resourceType"]
    if kind == "CodeSystem":

        def walk(nodes, depth):
            for c in nodes:
                des = "; ".join(d["value"] for d in c.get("designation", []))
                yield ["\u00a0\u00a0" * depth + c["code"], c["display"], des]
                yield from walk(c.get("concept", []), depth + 1)

        return ["Code", "Display", "Designation (zh/ro)"], list(walk(resource["concept"], 0))
    if kind == "ValueSet":
        rows = []
        for part in ("include", "exclude"):
            for inc in resource["compose"].get(part, []):
                for imported in inc.get("valueSet", []):
                    rows.append([part, "all codes of value set", imported])
                if "system" not in inc:
                    continue
                if "concept" in inc:
                    rows += [
                        [part, inc["system"], f"{c['code']} {c.get('display', '')}"]
                        for c in inc["concept"]
                    ]
                else:
                    rows.append([part, inc["system"], "all codes"])
        return ["", "System", "Code"], rows
    rows = []
    for g in resource["group"]:
        for e in g["element"]:
            for t in e["target"]:
                rows.append(
                    [
                        f"{e['code']} {e.get('display', '')}",
                        t["equivalence"],
                        f"{t['code']} {t.get('display', '')}",
                    ]
                )
    return ["Source", "Equivalence", "Target"], rows


def narrative(resource) -> dict:
    head, rows = _rows(resource)
    table = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    div = (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        f"<p><b>{_esc(resource['title'])}</b></p><p>{_esc(resource['description'])}</p>"
        f"<table>{table}</table></div>"
    )
    return {"status": "generated", "div": div}


def with_narrative(resource) -> dict:
    out = {}
    for key, value in resource.items():
        out[key] = value
        if key == "id":
            out["text"] = narrative(resource)
    return out
