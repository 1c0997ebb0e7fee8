"""The seeded synthetic telemedicine data generator (bench/datagen.py)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import datagen, datagen_output, datagen_vocab
from bench.datagen_common import chinese_resident_id, romanian_cnp
from fhir_server.validation import check_structure

SAMPLE = 2_000
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
DICOM_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    return list(datagen.resources(SAMPLE, seed=1))


def _stream_bytes(size: int, seed: int) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in datagen.resources(size, seed))


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = _stream_bytes(1_500, 7)
    assert first == _stream_bytes(1_500, 7)
    assert first != _stream_bytes(1_500, 8)


@pytest.mark.parametrize("size", [0, 1, 37, 150, 1_999, 2_345])
def test_the_stream_holds_exactly_size_resources(size: int) -> None:
    assert sum(1 for _ in datagen.resources(size, seed=3)) == size
    assert sum(len(case.resources) for case in datagen.generate(size, seed=3)) == size


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        next(datagen.generate(-1))


def test_every_type_is_present_at_2000(sample: list[dict[str, Any]]) -> None:
    counts = Counter(r["resourceType"] for r in sample)
    assert set(counts) == set(datagen.TYPES)
    assert counts["Observation"] > counts["Patient"] > counts["Organization"]


def test_cases_start_after_the_reference_data() -> None:
    cases = list(datagen.generate(SAMPLE, seed=1))
    assert cases[0].kind == "reference" and cases[0].patient_id is None
    shared = {r["resourceType"] for r in cases[0].resources}
    assert shared == {"Organization", "Practitioner", "PractitionerRole"}
    kinds = {case.kind for case in cases[1:]}
    assert kinds == {"teleradiology", "consultation", "diagnosis"}
    for case in cases[1:]:
        assert case.resources[0]["resourceType"] == "Patient"
        assert case.resources[0]["id"] == case.patient_id


def test_ids_are_valid_and_unique(sample: list[dict[str, Any]]) -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in sample]
    assert len(set(keys)) == len(keys)
    assert all(FHIR_ID.fullmatch(r["id"]) for r in sample)


def test_every_reference_points_to_an_earlier_resource(sample: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    total = 0
    for resource in sample:
        for target in datagen.references(resource):
            assert target in seen, f"{resource['resourceType']}/{resource['id']} → {target}"
            total += 1
        seen.add(f"{resource['resourceType']}/{resource['id']}")
    assert total > 3 * len(sample)


def test_every_resource_is_valid_r4(sample: list[dict[str, Any]]) -> None:
    for resource in sample:
        check_structure(resource)  # raises UnprocessableResource when invalid


def test_the_sample_exercises_the_optional_branches(sample: list[dict[str, Any]]) -> None:
    """So that the validity test above covers them (sub-tasks, refusals, panels, forms...)."""
    present: Counter[str] = Counter()
    for r in sample:
        for key in ("partOf", "statusReason", "component", "presentedForm", "text", "output"):
            if key in r:
                present[f"{r['resourceType']}.{key}"] += 1
        if "valueCodeableConcept" in r or "valueString" in r:
            present["Observation.finding"] += 1
    for branch in ("Task.partOf", "Task.statusReason", "Task.output", "Organization.partOf",
                   "Observation.component", "Observation.finding",
                   "DiagnosticReport.presentedForm", "Patient.text", "Consent.text"):  # fmt: skip
        assert present[branch] > 0, branch


def test_imaging_studies_are_consistent(sample: list[dict[str, Any]]) -> None:
    studies = [r for r in sample if r["resourceType"] == "ImagingStudy"]
    assert studies
    for study in studies:
        series = study["series"]
        assert 1 <= study["numberOfSeries"] == len(series) <= 4
        assert study["numberOfInstances"] == sum(len(s["instance"]) for s in series)
        assert study["modality"][0]["code"] in {"CT", "MR", "CR", "DX", "US"}
        uids = [study["identifier"][0]["value"].removeprefix("urn:oid:")]
        for s in series:
            assert 10 <= s["numberOfInstances"] == len(s["instance"]) <= 60
            assert s["modality"]["code"] == study["modality"][0]["code"]
            uids += [s["uid"], *(i["uid"] for i in s["instance"])]
        assert all(len(uid) <= 64 and DICOM_UID.fullmatch(uid) for uid in uids)
        assert len(set(uids)) == len(uids)


def test_values_are_realistic(sample: list[dict[str, Any]]) -> None:
    names = orjson.dumps([r.get("name") for r in sample if r["resourceType"] == "Patient"])
    text = names.decode()
    assert any(letter in text for letter in "șță")
    assert re.search(r"[\u4e00-\u9fff]", text)
    loinc = {r["code"]["coding"][0]["code"] for r in sample if r["resourceType"] == "Observation"}
    assert len(loinc) >= 40
    tests = datagen_vocab.VITALS + datagen_vocab.LABS + datagen_vocab.IMAGING_MEASURES
    assert len({t.code for t in tests}) >= 50
    years = {r["authoredOn"][:4] for r in sample if r["resourceType"] == "ServiceRequest"}
    assert len(years) >= 8
    zones = {r["authoredOn"][-6:] for r in sample if r["resourceType"] == "ServiceRequest"}
    assert zones == {"+02:00", "+03:00", "+08:00"}


def test_national_identifiers_carry_valid_check_digits() -> None:
    assert romanian_cnp("197010112345") == "1970101123454"
    assert chinese_resident_id("11010519491231002") == "11010519491231002X"


def test_references_and_rewrite(sample: list[dict[str, Any]]) -> None:
    task = next(r for r in sample if r["resourceType"] == "Task" and "output" in r)
    refs = datagen.references(task)
    assert refs[0].startswith("ServiceRequest/") and any(x.startswith("Patient/") for x in refs)
    mapping = {target: f"{target.split('/')[0]}/server-{n}" for n, target in enumerate(refs)}
    rewritten = datagen.rewrite_references(task, mapping)
    assert datagen.references(rewritten) == [mapping[target] for target in refs]
    assert datagen.references(task) == refs  # the original is untouched


def test_bundles_are_transactions_of_at_most_100_put_entries(
    sample: list[dict[str, Any]],
) -> None:
    bundles = list(datagen.bundles(SAMPLE, seed=1, entries=100))
    assert [len(b["entry"]) for b in bundles] == [100] * 20
    short = list(datagen.bundles(250, seed=1, entries=100))
    assert [len(b["entry"]) for b in short] == [100, 100, 50]
    assert [e["resource"] for b in bundles for e in b["entry"]] == sample
    for bundle in (bundles[0], bundles[-1], short[-1]):  # entries: every one is checked above
        check_structure(bundle)
    urls = set()
    for bundle in bundles:
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            assert entry["fullUrl"].startswith("urn:uuid:")
            urls.add(entry["fullUrl"])
    assert len(urls) == SAMPLE


def test_ndjson_files_hold_the_stream_per_type(tmp_path: Path) -> None:
    counts = datagen.write_ndjson(600, 2, tmp_path)
    stream = list(datagen.resources(600, 2))
    assert counts == Counter(r["resourceType"] for r in stream)
    for kind in counts:
        lines = (tmp_path / f"{kind}.ndjson").read_bytes().splitlines()
        assert [orjson.loads(line) for line in lines] == [
            r for r in stream if r["resourceType"] == kind
        ]


def test_bundle_files_equal_the_in_memory_bundles(tmp_path: Path) -> None:
    datagen.write_bundles(450, 2, tmp_path, entries=100)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"bundle-00000{n}.json" for n in range(1, 6)]
    on_disk = [orjson.loads((tmp_path / name).read_bytes()) for name in names]
    assert on_disk == list(datagen.bundles(450, 2, entries=100))
    assert (tmp_path / names[0]).read_bytes() == orjson.dumps(on_disk[0])


def test_ensure_dataset_writes_once_then_reuses(tmp_path: Path) -> None:
    first = datagen.ensure_dataset(300, 4, tmp_path)
    assert first == tmp_path / "300-4"
    marker = first / "COMPLETE.json"
    assert orjson.loads(marker.read_bytes())["counts"]["Organization"] > 0
    assert sorted(p.name for p in (first / "bundles").iterdir())[0] == "bundle-000001.json"
    stamp = marker.stat().st_mtime_ns
    (first / "ndjson" / "Patient.ndjson").write_bytes(b"sentinel\n")
    assert datagen.ensure_dataset(300, 4, tmp_path) == first
    assert marker.stat().st_mtime_ns == stamp
    assert (first / "ndjson" / "Patient.ndjson").read_bytes() == b"sentinel\n"
    marker.unlink()  # an unfinished dataset is rebuilt
    datagen.ensure_dataset(300, 4, tmp_path)
    assert (first / "ndjson" / "Patient.ndjson").read_bytes() != b"sentinel\n"
    assert [p.name for p in tmp_path.iterdir()] == ["300-4"]


def test_cli_prints_counts_per_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datagen.main(["--size", "400", "--seed", "5", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert re.search(r"^total\s+400$", out, re.MULTILINE)
    for kind in datagen.TYPES:
        assert re.search(rf"^{kind}\s+\d+$", out, re.MULTILINE)
    assert (tmp_path / "ndjson" / "Patient.ndjson").exists()
    assert (tmp_path / "bundles" / "bundle-000004.json").exists()


def test_full_urls_are_the_uuid5_of_type_and_id() -> None:
    for kind, rid in (("Patient", "pat-0000001"), ("ImagingStudy", "img-0012345")):
        expected = uuid.uuid5(datagen_output.FULL_URL_NAMESPACE, f"{kind}/{rid}")
        assert datagen_output.full_url(kind, rid) == f"urn:uuid:{expected}"
