"""A study's writer reads of each instance record only ``study_map.INSTANCE_FIELDS``, and the
whole records of the instances ``study_map.leading`` names (study_writer.py): the ImagingStudy
and the index records it builds that way are those it builds from every whole record."""

from __future__ import annotations

import random
from typing import Any

import pytest

from fhir_server.imaging import study_map
from fhir_server.storage.records import project


def _attribute(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _record(n: int, series: str, number: int | None, modality: str, rng: random.Random) -> dict:
    attributes = {
        "00080008": _attribute("CS", "ORIGINAL", "PRIMARY", f"T{n % 3}"),
        "00080020": _attribute("DA", "20261205"),
        "00080030": _attribute("TM", f"0{n % 10}3000"),
        "00080050": _attribute("SH", f"ACC{series[-1]}{n}"),  # differs: the first one counts
        "00080060": _attribute("CS", modality),
        "0008103E": _attribute("LO", f"series {series} by {n}"),
        "00100010": _attribute("PN", {"Alphabetic": f"Doe^{n}"}),
        "00100020": _attribute("LO", f"P{n}"),
        "00180015": _attribute("CS", rng.choice(["CHEST", "HEAD", "KNEE"])),
        "00200011": _attribute("IS", int(series[-1])),
    }
    if number is not None:
        attributes["00200013"] = _attribute("IS", number)
    verdict: dict[str, Any] = {"outcome": "accept", "findings": []}
    if n % 4 == 0:
        verdict["findings"] = [{"check": "derived-image-type", "action": "review",
                                "tag": "(0008,0008)", "reason": f"DERIVED {n}"}]  # fmt: skip
    return {
        "study": "1.2.3", "series": series, "sop_instance": f"1.2.3.{series[-1]}.{n:03d}",
        "sop_class": "1.2.840.10008.5.1.4.1.1.2", "organization": f"Organization/o{n}",
        "ae_title": f"AE{n}", "attributes": attributes, "verdict": verdict,
    }  # fmt: skip


def _as_read(records: list[dict]) -> list[dict]:
    """As the writer reads them: the fields of each, the whole ones for leading."""
    read = [project(record, study_map.INSTANCE_FIELDS) for record in records]
    for position in study_map.leading(read):
        read[position] = records[position]
    return read


@pytest.mark.parametrize("seed", range(12))
def test_the_study_built_from_the_fields_read_is_the_one_built_from_whole_records(
    seed: int,
) -> None:
    rng = random.Random(seed)
    records = []
    for s in range(1, rng.randint(1, 4) + 1):
        numbers = list(range(1, rng.randint(1, 9) + 1))
        rng.shuffle(numbers)  # instance numbers not in SOP Instance UID order
        for n, number in enumerate(numbers):
            kept = None if rng.random() < 0.2 else number  # some without Instance Number
            modality = "MR" if n == 3 else "CT"  # seldom a leading one: read from the fields
            records.append(_record(n, f"1.2.3.{s}", kept, modality, rng))
    records.sort(key=lambda r: r["sop_instance"])
    read = _as_read(records)
    assert sum(r is whole for r, whole in zip(read, records, strict=True)) < len(records) or (
        len(records) <= 3
    )
    links: dict[str, Any] = {"subject": {"reference": "Patient/p"}, "based_on": [],
                             "endpoint": None, "zone": "Europe/Bucharest"}  # fmt: skip
    assert study_map.imaging_study("1.2.3", read, **links) == study_map.imaging_study(
        "1.2.3", records, **links
    )
    assert study_map.index_puts("1.2.3", read, "ImagingStudy/i", "o") == study_map.index_puts(
        "1.2.3", records, "ImagingStudy/i", "o"
    )
    assert read[0] is records[0]  # the writer's links read the first record's sender too


def test_leading_names_the_first_of_the_study_and_of_each_series_both_ways() -> None:
    def summary(sop: str, series: str, number: int | None) -> dict[str, Any]:
        attributes = {} if number is None else {"00200013": _attribute("IS", number)}
        return {"sop_instance": sop, "series": series, "attributes": attributes}

    instances = [summary("1", "B", 5), summary("2", "A", 9), summary("3", "B", 1),
                 summary("4", "A", None), summary("5", "A", 2)]  # fmt: skip
    # first by UID: 0 (study, series B), 1 (series A); by number: 2 (B), 4 (A)
    assert study_map.leading(instances) == [0, 1, 2, 4]
    assert study_map.leading([]) == []
