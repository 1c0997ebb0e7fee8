"""ER7 reader/writer: delimiters, escapes, paths, Z-segments; python-hl7 cross-checks."""

from __future__ import annotations

from pathlib import Path

import hl7
import pytest

from fhir_server.hl7v2.er7 import Encoding, escape, parse, serialize, unescape
from fhir_server.hl7v2.errors import V2Error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7v2"
NASTY = "3|4 cm ^ see & compare ~ \\ note"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


def test_header_properties() -> None:
    message = parse(_fixture("ORM-O01-appendix-a.hl7"))
    assert message.msh_control_id == "MSG20250314093012000123"
    assert message.message_type == "ORM^O01"
    assert message.version == "2.5.1"
    assert message.sending_application == "EPICADT"
    assert message.sending_facility == "CITYHOSP^1.2.840.114350.1.13.0.1.7.2.696570^ISO"
    assert message.accept_ack_type == "AL"
    assert message.application_ack_type == "NE"
    assert message.encoding == Encoding()
    assert message.get("MSH-1") == "|"
    assert message.get("MSH-2") == "^~\\&"


def test_paths() -> None:
    message = parse(_fixture("ORM-O01-appendix-a.hl7"))
    assert message.get("PID-3") == "E4567890^^^CITYHOSP^MR"
    assert message.get("PID-3[2].1") == "999887777"
    assert message.get("PID-3[2].4") == "USSSA"
    assert message.get("PV1-7.9.2") == "2.16.840.1.113883.4.6"
    assert message.get("OBX[2]-3.1") == "2160-0"
    assert message.get("OBX[3]-3.1") == ""
    assert message.get("PID-3[9].1") == ""
    assert message.get("ZZZ-1") == ""
    with pytest.raises(ValueError, match="not an HL7 v2 path"):
        message.get("PID.3")


def test_keeps_z_segments_and_order() -> None:
    message = parse(_fixture("ORM-O01-v231-zds.hl7"))
    assert [s.name for s in message.segments] == ["MSH", "PID", "PV1", "ORC", "OBR", "ZDS"]
    assert message.get("ZDS-1.1") == "1.2.840.113619.2.55.3.604688119.968.1301234567.1"
    assert message.get("OBR-13") == "Headache & vertigo, r/o mass"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.hl7")))
def test_agrees_with_python_hl7(name: str) -> None:
    """Every field of every fixture reads the same as with python-hl7 (an independent parser)."""
    text = _fixture(name)
    ours = parse(text)
    theirs = hl7.parse(text)
    assert len(ours.segments) == len(theirs)
    for mine, other in zip(ours.segments, theirs, strict=True):
        assert mine.name == str(other[0])
        start = 3 if mine.name == "MSH" else 1
        for n in range(start, len(other)):
            assert mine.field(n) == str(other[n]), f"{mine.name}-{n}"


@pytest.mark.parametrize(
    "text",
    [NASTY, "a\\b", "\\F\\ literal", "^^^", "", "plain", "ünïcödé 中文", "x~y&z|w^v\\u"],
)
def test_escape_round_trip(text: str) -> None:
    escaped = escape(text)
    for delimiter in "|^~&":
        assert delimiter not in escaped
    assert unescape(escaped) == text


def test_escape_sequences() -> None:
    assert escape(NASTY) == "3\\F\\4 cm \\S\\ see \\T\\ compare \\R\\ \\E\\ note"
    assert escape("line1\r\nline2\nline3") == "line1\\.br\\line2\\.br\\line3"
    assert escape("a\nb", line_breaks=False) == "a b"
    assert unescape("a\\.br\\b") == "a\nb"
    assert unescape("\\X41C3A9\\") == "Aé"
    assert unescape("\\H\\bold\\N\\") == "bold"
    assert unescape("dangling \\F") == "dangling \\F"


def test_escaped_value_reads_as_one_component_in_python_hl7() -> None:
    raw = serialize(
        [
            ["MSH", "A", "B", "C", "D", "20250101", "", "ORU^R01", "1", "P", "2.5.1"],
            ["OBX", "1", "TX", "", "", escape(NASTY)],
        ]
    )
    parsed = hl7.parse(raw)
    obx5 = parsed.segment("OBX")[5]
    assert str(obx5) == escape(NASTY)
    assert len(obx5) == 1  # one repetition
    assert isinstance(obx5[0], str)  # python-hl7 collapses a value with no ^ or & to a string
    assert parsed.unescape(str(obx5)) == NASTY
    assert parse(raw).get("OBX-5") == NASTY


def test_other_delimiters() -> None:
    raw = "MSH#!@%$#A#B#C#D#20250101##ORM!O01#7#P#2.3.1\rPID#1##X1!!!AUTH@Y1!!!AUTH2\r"
    message = parse(raw)
    assert message.encoding == Encoding("#", "!", "@", "%", "$")
    assert message.message_type == "ORM^O01"
    assert message.get("PID-3[2].4") == "AUTH2"
    assert escape("a#b!c", message.encoding) == "a%F%b%S%c"


def test_line_endings_and_framing() -> None:
    text = _fixture("OMI-O23-v251.hl7")
    assert len(parse("\x0b" + text.replace("\r", "\r\n") + "\x1c\r").segments) == 6
    assert len(parse(text.replace("\r", "\n")).segments) == 6


@pytest.mark.parametrize(
    ("raw", "field", "code", "words"),
    [
        ("", None, "100", "does not start with an MSH"),
        ("PID|1||X\r", None, "100", "does not start with an MSH"),
        ("MSH|^~\\\r", 2, "101", "too short"),
        ("MSH|^^\\&|A\r", 2, "102", "wrong encoding characters"),
        ("MSHa^~\\&a\r", 2, "102", "wrong encoding characters"),
        ("MSH|^~\\&|A\rP1|x\r", None, "100", "no valid segment name"),
    ],
)
def test_parse_errors(raw: str, field: int | None, code: str, words: str) -> None:
    with pytest.raises(V2Error) as caught:
        parse(raw)
    assert caught.value.field == field
    assert caught.value.code == code
    assert caught.value.reject is True
    assert words in caught.value.message
