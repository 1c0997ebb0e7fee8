"""The Native DICOM Model XML writer (PS3.19 A.1) on the cases the DICOMweb tests do not reach:
private attributes, person name groups, empty and missing values, inline binary, text XML 1.0
cannot carry."""

from __future__ import annotations

from xml.etree import ElementTree

from fhir_server.imaging.native_xml import document

NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"


def attributes(item: dict[str, object]) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(document(item))
    assert root.tag == f"{NS}NativeDicomModel"
    return root.findall(f"{NS}DicomAttribute")


def test_attributes_in_tag_order_with_keyword_or_private_creator() -> None:
    found = attributes({
        "00291010": {"vr": "OB", "InlineBinary": "AAEC"},
        "00290010": {"vr": "LO", "Value": ["SIEMENS CSA HEADER"]},
        "00100020": {"vr": "LO", "Value": ["P1"]},
        "00100010": {"vr": "PN"},
    })  # fmt: skip
    assert [a.get("tag") for a in found] == ["00100010", "00100020", "00290010", "00291010"]
    assert found[0].get("keyword") == "PatientName" and list(found[0]) == []
    assert found[2].get("keyword") is None and found[2].get("privateCreator") is None
    assert found[3].get("privateCreator") == "SIEMENS CSA HEADER"
    assert found[3].findtext(f"{NS}InlineBinary") == "AAEC"


def test_values_numbered_person_names_split_and_forbidden_text_replaced() -> None:
    [name, comment, pixel_spacing] = attributes({
        "00280030": {"vr": "DS", "Value": [0.5, 1.0, None]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou",
                                            "Ideographic": "山田^太郎"}]},
        "00204000": {"vr": "LT", "Value": ["bell\x07 & <tag>"]},
    })  # fmt: skip
    values = pixel_spacing.findall(f"{NS}Value")
    assert [(v.get("number"), v.text) for v in values] == [("1", "0.5"), ("2", "1"), ("3", None)]
    group = name.find(f"{NS}PersonName[@number='1']/{NS}Ideographic")
    assert group is not None and group.findtext(f"{NS}GivenName") == "太郎"
    assert comment.findtext(f"{NS}Value") == "bell\ufffd & <tag>"


def test_sequence_items_nest() -> None:
    [sequence] = attributes({
        "00081115": {"vr": "SQ", "Value": [
            {"0020000E": {"vr": "UI", "Value": ["1.2.3"]}},
            {"0020000E": {"vr": "UI", "Value": ["1.2.4"]}},
        ]},
    })  # fmt: skip
    items = sequence.findall(f"{NS}Item")
    assert [i.get("number") for i in items] == ["1", "2"]
    assert items[1].findtext(f"{NS}DicomAttribute/{NS}Value") == "1.2.4"
