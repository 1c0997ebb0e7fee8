"""Pre-ACK checks: each rule with the segment, field and HL7 0357 code it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.hl7v2.checks import check
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.errors import V2Error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7v2"
BASE = (FIXTURES / "ORM-O01-v231-zds.hl7").read_bytes().decode()


def _errors(raw: str) -> list[V2Error]:
    return check(parse(raw))


def _replace(segment: str, field: int, value: str, raw: str = BASE) -> str:
    lines = raw.split("\r")
    for i, line in enumerate(lines):
        if line.startswith(segment + "|"):
            parts = line.split("|")
            index = field if segment != "MSH" else field - 1
            parts.extend([""] * (index + 1 - len(parts)))
            parts[index] = value
            lines[i] = "|".join(parts)
            break
    return "\r".join(lines)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.hl7")))
def test_fixtures_pass(name: str) -> None:
    assert _errors((FIXTURES / name).read_bytes().decode()) == []


@pytest.mark.parametrize(
    ("segment", "field", "value", "where", "code", "reject"),
    [
        ("MSH", 9, "ADT^A01", ("MSH", 9, 1), "200", True),
        ("MSH", 9, "ORM^O02", ("MSH", 9, 2), "201", True),
        ("MSH", 12, "2.7", ("MSH", 12, None), "203", True),
        ("MSH", 10, "", ("MSH", 10, None), "101", True),
        ("MSH", 7, "2025-04-01", ("MSH", 7, None), "102", False),
        ("PID", 3, "^^^RADHOSP^MR", ("PID", 3, 1), "101", False),
        ("PID", 7, "19651312", ("PID", 7, None), "102", False),
        ("ORC", 1, "", ("ORC", 1, None), "101", False),
        ("ORC", 1, "ZZ", ("ORC", 1, None), "103", False),
        ("ORC", 5, "QQ", ("ORC", 5, None), "103", False),
        ("ORC", 9, "yesterday", ("ORC", 9, None), "102", False),
        ("ORC", 7, "^^^2025040125", ("ORC", 7, 4), "102", False),
        ("OBR", 4, "", ("OBR", 4, None), "101", False),
        ("OBR", 7, "20250401250000", ("OBR", 7, None), "102", False),
    ],
)
def test_each_rule(
    segment: str,
    field: int,
    value: str,
    where: tuple[str, int, int | None],
    code: str,
    reject: bool,
) -> None:
    errors = _errors(_replace(segment, field, value))
    assert errors, "expected an error"
    first = errors[0]
    assert (first.segment, first.field, first.component) == where
    assert first.code == code
    assert first.reject is reject
    assert first.message


def test_omi_needs_251() -> None:
    raw = (FIXTURES / "OMI-O23-v251.hl7").read_bytes().decode()
    assert [e.code for e in _errors(_replace("MSH", 12, "2.3.1", raw))] == ["203"]


def test_versions_of_orm() -> None:
    for version in ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"):
        assert _errors(_replace("MSH", 12, version)) == []


def test_missing_segments() -> None:
    no_pid = "\r".join(line for line in BASE.split("\r") if not line.startswith("PID"))
    assert [(e.segment, e.code) for e in _errors(no_pid)] == [("PID", "100")]
    no_orc = "\r".join(line for line in BASE.split("\r") if not line.startswith(("ORC", "OBR")))
    assert [(e.segment, e.code) for e in _errors(no_orc)] == [("ORC", "100")]


def test_placer_number_required() -> None:
    raw = _replace("OBR", 2, "", _replace("ORC", 2, ""))
    assert [(e.segment, e.field, e.code) for e in _errors(raw)] == [("ORC", 2, "101")]
    assert _errors(_replace("ORC", 2, "")) == []  # OBR-2 is enough


def test_status_change_needs_order_status() -> None:
    raw = _replace("ORC", 5, "", _replace("ORC", 1, "SC"))
    assert [(e.field, e.code) for e in _errors(raw)] == [(5, "101")]
    assert _errors(_replace("ORC", 5, "CM", _replace("ORC", 1, "SC"))) == []


def test_cancel_without_obr_is_fine() -> None:
    raw = "\r".join(line for line in BASE.split("\r") if not line.startswith("OBR"))
    assert _errors(_replace("ORC", 1, "CA", raw)) == []
    errors = _errors(raw)  # NW without an OBR
    assert [(e.segment, e.code) for e in errors] == [("OBR", "100")]


def test_second_order_is_located() -> None:
    orc = next(line for line in BASE.split("\r") if line.startswith("ORC"))
    obr = next(line for line in BASE.split("\r") if line.startswith("OBR"))
    raw = BASE.rstrip("\r") + "\r" + orc.replace("ORC|NW", "ORC|QQ") + "\r" + obr + "\r"
    errors = _errors(raw)
    assert [(e.segment, e.sequence, e.field, e.code) for e in errors] == [("ORC", 2, 1, "103")]
    assert errors[0].location == "ORC[2]-1"
