"""The imaging ingest (ImagingService) on a real application: SQLite, filesystem blobs, the FHIR
write pipeline. Every door (C-STORE, STOW-RS, C-MOVE) calls this same path."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from fhir_server.imaging import study_writer
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.store_result import Sender
from tests.conftest import running_application
from tests.dicom.orthanc import ct_study
from tests.dicom.test_node import blob
from tests.unit.imaging import synth

MODALITY = Sender("MODALITY1", "Organization/beneficiary", "c-store")
CTX = RequestContext(channel="test")


async def _started(app: Application, *, quiet: float, max_delay: float) -> ImagingService:
    imaging = ImagingService(
        app.service, app.store.records, app.blobs, app.service.clock,
        policy=GatePolicy.default(), base_url="http://fhir.example/fhir",
        zone="Europe/Bucharest", quiet=quiet, max_delay=max_delay,
    )  # fmt: skip
    await imaging.start()
    return imaging


async def _service_writing_when_asked(app: Application) -> ImagingService:
    """A started service that writes a study only when asked (quiet time 30 s)."""
    return await _started(app, quiet=30.0, max_delay=60.0)


async def _studies(app: Application, uid: str) -> list[dict[str, Any]]:
    bundle = await app.service.search_type(
        CTX, "ImagingStudy", (("identifier", f"urn:dicom:uid|urn:oid:{uid}"),)
    )
    decoded = orjson.loads(orjson.dumps(bundle))
    return [e["resource"] for e in decoded.get("entry", [])]


async def test_study_is_stored_byte_identical_and_indexed_as_one_imaging_study(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    files = ct_study("PID-7", "20261201", 4, patient_name="Popescu^Ana", accession="ACC-77")
    results = [await imaging.store_part10(f, MODALITY) for f in files]
    assert all(r.ok and r.status == 0 and not r.duplicate for r in results)
    study_uid = results[0].study_uid
    assert study_uid is not None
    await imaging.flush()
    [study] = await _studies(app, study_uid)
    assert study["status"] == "available"
    assert study["numberOfSeries"] == 1 and study["numberOfInstances"] == 4
    assert study["modality"] == [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                  "code": "CT"}]  # fmt: skip
    acsn = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
    assert {"type": {"coding": [acsn]}, "value": "ACC-77"} in study["identifier"]
    assert (
        study["started"].startswith("2026-12-01T") and study["started"][-6:] == "-05:00"
    )  # its Timezone Offset From UTC
    [series] = study["series"]
    assert [i["number"] for i in series["instance"]] == [1, 2, 3, 4]
    assert series["instance"][0]["sopClass"]["code"] == "urn:oid:1.2.840.10008.5.1.4.1.1.2"
    assert study["endpoint"][0]["reference"].startswith("Endpoint/")
    patient = study["subject"]["reference"]
    shown = await app.service.read(CTX, "Patient", patient.split("/")[1])
    body = orjson.loads(shown.body)
    assert body["name"] == [{"family": "Popescu", "given": ["Ana"]}]
    for f, r in zip(files, results, strict=True):
        assert r.sop_instance is not None
        assert await blob(app, r.sop_instance) == f
    record = await app.store.records.get("dicom-study", study_uid)
    assert record is not None and record["imaging_study"] == f"ImagingStudy/{study['id']}"


async def test_a_large_study_is_built_off_the_event_loop_alike(
    setup: tuple[Application, ImagingService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past BUILD_ON_LOOP_INSTANCES instances the ImagingStudy and the index records are built
    in a worker thread: the same resource and records as on the loop."""
    app, imaging = setup
    written: dict[str, dict[str, Any]] = {}
    for threshold in (200, 0):
        monkeypatch.setattr(study_writer, "BUILD_ON_LOOP_INSTANCES", threshold)
        files = ct_study(f"PID-{threshold}", "20261201", 3, accession=f"ACC-{threshold}")
        results = [await imaging.store_part10(f, MODALITY) for f in files]
        study_uid = results[0].study_uid
        assert study_uid is not None
        await imaging.flush()
        [study] = await _studies(app, study_uid)
        assert study["numberOfInstances"] == 3
        record = await app.store.records.get("dicom-study", study_uid)
        assert record is not None and record["imaging_study"] == f"ImagingStudy/{study['id']}"
        dated = await app.store.records.find("dicom-study-date", limit=10, after="20261201")
        assert study_uid in {r["study"] for r in dated}
        written[str(threshold)] = study
    on_loop, off_loop = written["200"], written["0"]
    assert [len(s["instance"]) for s in on_loop["series"]] == [
        len(s["instance"]) for s in off_loop["series"]
    ]
    assert on_loop.keys() == off_loop.keys()


async def test_instances_are_coalesced_not_one_version_each(
    setup: tuple[Application, ImagingService],
) -> None:
    app, _ = setup
    # Its own service with a long quiet time: on a loaded machine two stores can be more than
    # the fixture's 50 ms apart, and the study would (rightly) be written in between.
    imaging = await _service_writing_when_asked(app)
    try:
        files = ct_study("PID-8", "20261201", 12)
        for f in files:
            await imaging.store_part10(f, MODALITY)
        await imaging.flush()
        uid = (await imaging.store_part10(files[0], MODALITY)).study_uid
        await imaging.flush()
    finally:
        await imaging.stop()
    assert uid is not None
    [study] = await _studies(app, uid)
    assert study["numberOfInstances"] == 12
    assert study["meta"]["versionId"] == "1"  # twelve instances and a resend: one write


async def test_settle_writes_the_pending_studies_together_and_leaves_written_ones_alone(
    setup: tuple[Application, ImagingService],
) -> None:
    """What a door asks at association end: every study it stored written, at once."""
    app, _ = setup
    imaging = await _service_writing_when_asked(app)
    try:
        uids = []
        for patient in ("PID-S1", "PID-S2", "PID-S3"):
            results = [await imaging.store_part10(f, MODALITY)
                       for f in ct_study(patient, "20261201", 3)]  # fmt: skip
            uids.append(results[0].study_uid)
        assert None not in uids
        written, *pending = [str(uid) for uid in uids]
        await imaging.flush(written)  # written before: nothing new since
        assert [len(await _studies(app, uid)) for uid in pending] == [0, 0]
        await imaging.settle([written, *pending, written])
        for uid in uids:
            [study] = await _studies(app, str(uid))
            assert study["numberOfInstances"] == 3
            assert study["meta"]["versionId"] == "1"  # the written one was not written again
        assert await app.store.records.find("dicom-pending", limit=10) == []
    finally:
        await imaging.stop()


async def test_resent_instance_is_idempotent(setup: tuple[Application, ImagingService]) -> None:
    app, imaging = setup
    [data] = ct_study("PID-9", "20261201", 1)
    first = await imaging.store_part10(data, MODALITY)
    again = await imaging.store_part10(data, MODALITY)
    assert first.ok and again.ok and again.duplicate and not first.duplicate
    await imaging.flush()
    assert first.study_uid is not None
    [study] = await _studies(app, first.study_uid)
    assert study["numberOfInstances"] == 1


async def test_ro14_rejected_instance_is_not_stored_and_is_recorded(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    result = await imaging.store_part10(synth.scanned_film(), MODALITY)
    assert not result.ok and result.status == 0xC000
    assert result.comment is not None and "secondary-capture" in result.comment
    assert result.sop_instance is not None
    assert await app.blobs.info(result.sop_instance) is None
    assert await app.store.records.get("dicom-instance", result.sop_instance) is None
    rejections = await app.store.records.find("dicom-rejection", result.study_uid)
    assert rejections and rejections[0]["ae_title"] == "MODALITY1"


async def test_truncated_file_is_refused_with_the_place(
    setup: tuple[Application, ImagingService],
) -> None:
    _app, imaging = setup
    [data] = ct_study("PID-10", "20261201", 1)
    result = await imaging.store_part10(data[: len(data) - 2000], MODALITY)
    assert result.status == 0xC000 and result.comment is not None
    assert "7FE0,0010" in result.comment


async def test_ro14_review_flag_is_a_note_on_the_imaging_study(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    result = await imaging.store_part10(synth.burned_in_us(), MODALITY)
    assert result.ok and result.review is not None
    await imaging.flush()
    assert result.study_uid is not None
    [study] = await _studies(app, result.study_uid)
    assert any(n["text"].startswith("Flagged for review (RO-14): burned-in-annotation")
               for n in study["note"])  # fmt: skip


def _issued(part10: bytes, patient_id: str) -> bytes:
    """``part10`` with Patient ID ``patient_id`` issued by the OID 1.2.40.0.10.1.4.3.1."""
    ds = pydicom.dcmread(BytesIO(part10))
    ds.PatientID, ds.IssuerOfPatientID = patient_id, "1.2.40.0.10.1.4.3.1"
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def test_the_subject_is_the_patient_with_the_identifier_or_none_if_several(
    setup: tuple[Application, ImagingService],
) -> None:
    """The Patient whose identifier is the issued Patient ID: the one there, else one created;
    with several such Patients, a logical reference (a wrong link would show one patient's
    images on another's record)."""
    app, imaging = setup
    system = "urn:oid:1.2.40.0.10.1.4.3.1"
    known = await app.service.create(
        CTX,
        "Patient",
        {"resourceType": "Patient", "identifier": [{"system": system, "value": "P-ONE"}]},
    )
    for _ in range(2):
        await app.service.create(
            CTX,
            "Patient",
            {"resourceType": "Patient", "identifier": [{"system": system, "value": "P-TWO"}]},
        )
    subjects = []
    for patient_id in ("P-ONE", "P-TWO", "P-NEW"):
        [part10] = ct_study(patient_id, "20261205", 1, patient_name="Ionescu^Dan")
        result = await imaging.store_part10(_issued(part10, patient_id), MODALITY)
        await imaging.flush()
        assert result.study_uid is not None
        [study] = await _studies(app, result.study_uid)
        subjects.append(study["subject"])
    assert subjects[0] == {"reference": f"Patient/{known.version.id}"}
    assert subjects[1] == {
        "identifier": {"system": system, "value": "P-TWO"}, "type": "Patient",
        "display": "Ionescu Dan",
    }  # fmt: skip
    created = await app.service.read(CTX, "Patient", subjects[2]["reference"].split("/")[1])
    assert orjson.loads(created.body)["identifier"] == [{"system": system, "value": "P-NEW"}]


async def test_based_on_links_the_order_by_accession_number(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    patient = await app.service.create(CTX, "Patient", {"resourceType": "Patient"})
    order = await app.service.create(CTX, "ServiceRequest", {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"reference": f"Patient/{patient.version.id}"},
        "identifier": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
            "system": "urn:oid:1.2.3.4", "value": "ACC-LINK-1"}],
    })  # fmt: skip
    files = ct_study("PID-11", "20261201", 1, accession="ACC-LINK-1")
    result = await imaging.store_part10(files[0], MODALITY)
    await imaging.flush()
    assert result.study_uid is not None
    [study] = await _studies(app, result.study_uid)
    assert study["basedOn"] == [{"reference": f"ServiceRequest/{order.version.id}"}]


async def test_unmanaged_elements_survive_a_rebuild(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    files = ct_study("PID-12", "20261201", 2)
    first = await imaging.store_part10(files[0], MODALITY)
    await imaging.flush()
    assert first.study_uid is not None
    [study] = await _studies(app, first.study_uid)
    study["reasonCode"] = [{"text": "suspected fracture"}]
    study["note"] = [{"text": "radiologist: compare with prior"}]
    await app.service.update(CTX, "ImagingStudy", study["id"], study)
    await imaging.store_part10(files[1], MODALITY)
    await imaging.flush()
    [again] = await _studies(app, first.study_uid)
    assert again["numberOfInstances"] == 2
    assert again["reasonCode"] == [{"text": "suspected fracture"}]
    assert again["note"] == [{"text": "radiologist: compare with prior"}]


async def test_an_edit_made_while_the_study_is_rebuilt_is_kept(
    setup: tuple[Application, ImagingService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's update lands between the rebuild's read of the ImagingStudy and its write: the
    write (If-Match on the version read) fails, the study is read and rebuilt again, and both
    the edit and the new instance are in the result."""
    app, imaging = setup
    files = ct_study("PID-RACE", "20261201", 2)
    first = await imaging.store_part10(files[0], MODALITY)
    await imaging.flush()
    assert first.study_uid is not None
    links = imaging._writer.links
    search = links.search
    edits: list[str] = []

    async def search_then_edit(ctx: RequestContext, type: str, **params: str) -> Any:
        found = await search(ctx, type, **params)
        if type == "ImagingStudy" and found and not edits:
            edited = {**found[0], "reasonCode": [{"text": "suspected fracture"}]}
            written = await app.service.update(CTX, "ImagingStudy", found[0]["id"], edited)
            edits.append(written.version.id)
        return found

    monkeypatch.setattr(links, "search", search_then_edit)
    await imaging.store_part10(files[1], MODALITY)
    await imaging.flush()
    assert edits, "the edit was made between the read and the write"
    [study] = await _studies(app, first.study_uid)
    assert study["numberOfInstances"] == 2
    assert study["reasonCode"] == [{"text": "suspected fracture"}]


async def test_pending_studies_are_written_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_application(data_dir) as app:
        imaging = ImagingService(app.service, app.store.records, app.blobs, app.service.clock,
                                 quiet=60, max_delay=60)  # fmt: skip
        await imaging.start()
        [data] = ct_study("PID-13", "20261201", 1)
        result = await imaging.store_part10(data, MODALITY)
        # a crash: the coalescing task dies before it writes
        assert imaging._task is not None
        imaging._task.cancel()
    async with running_application(data_dir) as app:
        imaging = ImagingService(app.service, app.store.records, app.blobs, app.service.clock)
        await imaging.start()
        try:
            assert result.study_uid is not None
            [study] = await _studies(app, result.study_uid)
            assert study["numberOfInstances"] == 1
        finally:
            await imaging.stop()
