"""``prepare`` gives, byte for byte, the outcome the implementation before issue 9 gave.

Issue 9 reads the attributes the gate and the index need straight from the raw elements of the
Part-10 walk instead of a pydicom Dataset. The golden outcomes (``golden/prepare.json.gz``) were
written by the Dataset-based implementation before that change, on every file bundled with
pydicom, the synthesised gate cases in three encodings and CT variants on the edges of value
decoding (:mod:`tests.unit.imaging.prepare_cases`); each outcome is compared as JSON text: the
Prepared UIDs, transfer syntax, verdict and DICOM JSON attributes (numbers' int/float included),
or the refusal's status, comment, detail, UIDs and verdict. The Dataset-based path, still taken
by files pydicom reads in a way of its own, is held to the same outcomes on every case.
"""

from __future__ import annotations

import difflib
import io
import json

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from fhir_server.imaging import raw_header, raw_json
from tests.unit.imaging import prepare_cases, synth

GOLDEN = prepare_cases.golden()
CASES = dict(prepare_cases.cases())


def test_every_case_has_a_golden_outcome() -> None:
    assert sorted(CASES) == sorted(GOLDEN)
    assert len(CASES) > 450


def _diff(expected: str, found: str) -> str:
    def lines(text: str) -> list[str]:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False).splitlines()

    return "\n".join(difflib.unified_diff(lines(expected), lines(found), lineterm="", n=2))


@pytest.mark.parametrize("case", sorted(CASES))
def test_prepare_outcome_is_the_golden_one(case: str) -> None:
    found = prepare_cases.outcome(CASES[case])
    assert found == GOLDEN[case], _diff(GOLDEN[case], found)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_dataset_path_gives_the_golden_outcome_too(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file read as a pydicom Dataset (the way deflated files and other character sets
    still are) gives the same outcome: both paths stay one behaviour."""
    monkeypatch.setattr(raw_header.RawHeader, "of", classmethod(lambda cls, layout: None))
    found = prepare_cases.outcome(CASES[case])
    assert found == GOLDEN[case], _diff(GOLDEN[case], found)


def test_values_converted_before_are_reused_without_changing_any_outcome() -> None:
    """The raw path keeps the values it has converted and read (raw_json.py, raw_header.py):
    every case prepared again
    after all the others, in reverse order (each value then a look-up where one was seen
    before, under any character set and byte order), still gives its golden outcome."""
    raw_json._CONVERTED.clear()
    raw_header._PLAIN.clear()
    for case in sorted(CASES):
        prepare_cases.outcome(CASES[case])
    assert raw_json._CONVERTED and raw_header._PLAIN
    for case in sorted(CASES, reverse=True):
        found = prepare_cases.outcome(CASES[case])
        assert found == GOLDEN[case], _diff(GOLDEN[case], found)


def test_bytes_read_under_one_tag_are_read_again_under_another() -> None:
    """The same bytes are not the same value under another tag: ``A=B`` is a plain Patient ID
    but a Patient's Name with an ideographic group, which pydicom reads apart (both read by
    the gate's checks, in implicit VR: the same bytes and no VR written)."""
    ds = pydicom.dcmread(io.BytesIO(synth.ct()))
    ds.PatientID = "A=B"
    first = prepare_cases.encode(ds, ImplicitVRLittleEndian)
    ds.PatientName = "A=B"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = synth.uid("plain", "again")
    second = prepare_cases.encode(ds, ImplicitVRLittleEndian)
    raw_header._PLAIN.clear()
    prepare_cases.outcome(first)
    found = json.loads(prepare_cases.outcome(second))["attributes"]
    assert found["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "A", "Ideographic": "B"}]}
