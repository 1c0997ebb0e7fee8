"""DICOMweb answers in the Native DICOM Model XML (PS3.19 A.1) when the client asks for
``application/dicom+xml``: QIDO-RS results and WADO-RS metadata as one XML document per part,
the STOW-RS response as one document. Each document is read back here by an independent reader
(ElementTree) and must say what the JSON answer to the same request says."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import requests

from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import DicomWeb
from tests.dicomweb.test_dicomweb import call, split_multipart, stow, uid_of

NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
XML_PARTS = 'multipart/related; type="application/dicom+xml"'
COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def read_model(document: bytes) -> dict[str, Any]:
    """A NativeDicomModel document as DICOM JSON (values as text)."""
    root = ElementTree.fromstring(document)
    assert root.tag == f"{NS}NativeDicomModel"
    return _attributes(root)


def _attributes(node: ElementTree.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in node.findall(f"{NS}DicomAttribute"):
        item: dict[str, Any] = {"vr": attribute.get("vr")}
        values: list[Any] = []
        for child in attribute:
            name = child.tag.removeprefix(NS)
            if name == "BulkData":
                item["BulkDataURI"] = child.get("uri")
            elif name == "InlineBinary":
                item["InlineBinary"] = child.text
            elif name == "Item":
                values.append(_attributes(child))
            elif name == "PersonName":
                name_value = {}
                for group in child:
                    parts = [group.findtext(f"{NS}{c}") or "" for c in COMPONENTS]
                    name_value[group.tag.removeprefix(NS)] = "^".join(parts).rstrip("^")
                values.append(name_value)
            else:
                values.append(child.text)
        if values:
            item["Value"] = values
        out[attribute.get("tag", "")] = item
    return out


def as_text(item: dict[str, Any]) -> dict[str, Any]:
    """A DICOM JSON object with every number as the text XML gives it."""
    out: dict[str, Any] = {}
    for tag, attribute in item.items():
        copy = dict(attribute)
        if "Value" in copy:
            copy["Value"] = [
                as_text(v) if attribute.get("vr") == "SQ"
                else v if isinstance(v, (dict, str)) or v is None
                else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                for v in copy["Value"]
            ]  # fmt: skip
        out[tag] = copy
    return out


async def test_ro23_qido_and_metadata_answer_xml_saying_what_json_says(dicomweb: DicomWeb) -> None:
    files = ct_study("XML-1", "20240105", 2, patient_name="Popescu^Ana^Maria^Dr")
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    study = uid_of(files[0], "StudyInstanceUID")
    for path in ("/studies?PatientID=XML-1", f"/studies/{study}/instances",
                 f"/studies/{study}/metadata"):  # fmt: skip
        as_json = await call(requests.get, dicomweb.url + path, timeout=30)
        as_xml = await call(
            requests.get, dicomweb.url + path, headers={"Accept": XML_PARTS}, timeout=30
        )
        assert as_xml.status_code == 200, as_xml.text
        assert as_xml.headers["Content-Type"].startswith(XML_PARTS)
        parts = split_multipart(as_xml)
        assert [read_model(p) for p in parts] == [as_text(i) for i in as_json.json()], path
    [first] = split_multipart(await call(
        requests.get, f"{dicomweb.url}/studies?PatientID=XML-1",
        headers={"Accept": "application/dicom+xml"}, timeout=30,
    ))  # fmt: skip
    name = ElementTree.fromstring(first).find(f"{NS}DicomAttribute[@keyword='PatientName']")
    assert name is not None
    assert name.findtext(f"{NS}PersonName/{NS}Alphabetic/{NS}FamilyName") == "Popescu"
    assert name.findtext(f"{NS}PersonName/{NS}Alphabetic/{NS}NamePrefix") == "Dr"
    none = await call(requests.get, f"{dicomweb.url}/studies?PatientID=nobody",
                      headers={"Accept": XML_PARTS}, timeout=30)  # fmt: skip
    assert none.status_code == 200 and split_multipart(none) == []


async def test_ro23_stow_answers_xml_when_asked(dicomweb: DicomWeb) -> None:
    files = ct_study("XML-2", "20240106", 2)
    stored = await call(stow, dicomweb.url, files)
    body, content_type = stored.request.body, stored.request.headers["Content-Type"]
    again = await call(
        requests.post, f"{dicomweb.url}/studies", data=body, timeout=30,
        headers={"Content-Type": content_type, "Accept": "application/dicom+xml"},
    )  # fmt: skip
    assert again.status_code == 200 and again.headers["Content-Type"] == "application/dicom+xml"
    assert read_model(again.content) == as_text(stored.json())
    refused = await call(
        requests.post, f"{dicomweb.url}/studies", data=body, timeout=30,
        headers={"Content-Type": content_type, "Accept": "text/html"},
    )  # fmt: skip
    assert refused.status_code == 406


async def test_quality_values_choose_the_model(dicomweb: DicomWeb) -> None:
    files = ct_study("XML-3", "20240107", 1)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    url = f"{dicomweb.url}/studies?PatientID=XML-3"
    prefer_xml = {"Accept": f"application/dicom+json; q=0.5, {XML_PARTS}"}
    got = await call(requests.get, url, headers=prefer_xml, timeout=30)
    assert got.headers["Content-Type"].startswith(XML_PARTS)
    never_xml = {"Accept": f"{XML_PARTS}; q=0, application/json"}
    got = await call(requests.get, url, headers=never_xml, timeout=30)
    assert got.headers["Content-Type"] == "application/dicom+json" and len(got.json()) == 1
