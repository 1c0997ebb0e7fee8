"""Orders in, end to end: python-hl7's ``mllp_send`` sends ORM^O01 / OMI^O23 to the MLLP door,
gets AA, and the worker maps them into Patient, Practitioner, Encounter, ServiceRequest and Task,
found by the placer number; order control NW, XO, SC, CA, DC, OC update the same order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.errors import V2Error
from fhir_server.hl7v2.inbound import OrderMapper
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.senders import SenderConfig
from tests.conftest import free_port, running_application
from tests.hl7v2.conftest import mllp_send, segments

pytestmark = pytest.mark.asyncio(loop_scope="module")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
CTX = RequestContext()
MRN = "https://radhosp.example.ro/mrn"
SENDER = f"RIS^RADHOSP=Organization/radhosp;authority:RADHOSP={MRN}"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


def zds_order(control: str, placer: str, *, orc1: str = "NW", orc5: str = "SC",
              code: str = "MRBRAIN^MR Brain with contrast^99RAD") -> str:  # fmt: skip
    """The v2.3.1 IHE-style fixture with another control id, placer number and ORC-1/ORC-5."""
    raw = fixture("ORM-O01-v231-zds.hl7")
    raw = raw.replace("|RIS0001|", f"|{control}|").replace("A103Z", placer)
    raw = raw.replace("ORC|NW|", f"ORC|{orc1}|").replace("||SC||^^^", f"||{orc5}||^^^")
    return raw.replace("MRBRAIN^MR Brain with contrast^99RAD", code)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Application]:
    data = tmp_path_factory.mktemp("orders") / "data"
    async with running_application(
        data, mllp_port=free_port(), hl7_senders=(SENDER,), hl7_timezone="Europe/Bucharest"
    ) as application:  # fmt: skip
        await application.service.update(
            CTX, "Organization", "radhosp",
            {"resourceType": "Organization", "id": "radhosp", "name": "Rad Hospital"},
        )  # fmt: skip
        yield application


async def send(app: Application, tmp: Path, *messages: str) -> list[dict[str, Any]]:
    """mllp_send the messages on one connection; each one's log record once the worker is done."""
    port = app.settings.mllp_port
    acks = await asyncio.to_thread(mllp_send, port, list(messages), tmp)
    assert [segments(a)["MSA"][1] for a in acks] == ["AA"] * len(messages), acks
    assert app.messages is not None
    done = []
    async with asyncio.timeout(30):
        for ack in acks:
            while True:
                record = await app.messages.get(segments(ack)["MSH"][10])
                if record is not None and record["state"] in ("mapped", "failed"):
                    done.append(record)
                    break
                await asyncio.sleep(0.05)
    return done


async def search(app: Application, type_: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    bundle = await app.service.search_type(CTX, type_, list(params))
    return [orjson.loads(orjson.dumps(e["resource"])) for e in bundle.get("entry", [])]


async def read(app: Application, reference: str) -> dict[str, Any]:
    type_, id_ = reference.split("/")
    found: dict[str, Any] = orjson.loads((await app.service.read(CTX, type_, id_)).body)
    return found


async def by_placer(app: Application, placer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (request,) = await search(app, "ServiceRequest", ("identifier", placer))
    (task,) = await search(app, "Task", ("focus", f"ServiceRequest/{request['id']}"))
    return request, task


async def test_orders_on_one_connection_become_service_request_and_task(
    app: Application, tmp_path: Path
) -> None:
    mapped = await send(
        app, tmp_path, zds_order("E2E-1", "PL-E2E-1"), zds_order("E2E-2", "PL-E2E-2")
    )
    assert [m["state"] for m in mapped] == ["mapped", "mapped"]
    request, task = await by_placer(app, "PL-E2E-1")
    assert request["status"] == "active" and request["intent"] == "order"
    assert task["status"] == "accepted" and task["for"] == request["subject"]
    values = {i.get("type", {}).get("text") or i["type"]["coding"][0]["code"]: i["value"]
              for i in request["identifier"]}  # fmt: skip
    assert values["PLAC"] == "PL-E2E-1" and values["FILL"] == "B103Z"
    assert values["ACSN"] == "ACC-7001"
    assert (
        values["Study Instance UID"] == "urn:oid:1.2.840.113619.2.55.3.604688119.968.1301234567.1"
    )
    assert request["code"]["coding"][0]["code"] == "MRBRAIN"
    assert request["orderDetail"][0]["coding"][0]["code"] == "MR"
    assert request["authoredOn"] == "2025-04-01T08:10:00+03:00"  # Europe/Bucharest, summer
    patient = await read(app, request["subject"]["reference"])
    assert patient["identifier"][0] == {
        "system": MRN, "value": "MR-1001",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR", "display": "Medical record number"}]},
    }  # fmt: skip
    assert patient["managingOrganization"] == {"reference": "Organization/radhosp"}
    assert patient["birthDate"] == "1965-02-12" and patient["gender"] == "male"
    practitioner = await read(app, request["requester"]["reference"])
    assert practitioner["name"][0]["family"] == "IONESCU"
    encounter = await read(app, request["encounter"]["reference"])
    assert encounter["class"]["code"] == "IMP"
    assert encounter["identifier"][0]["value"] == "IP-7788"
    # both orders share one Patient and one Practitioner (conditional on their identifiers)
    other, _ = await by_placer(app, "PL-E2E-2")
    assert other["subject"] == request["subject"]
    assert other["requester"] == request["requester"]
    assert len(await search(app, "Patient", ("identifier", f"{MRN}|MR-1001"))) == 1


async def test_omi_o23_and_the_fhir_converter_sample(app: Application, tmp_path: Path) -> None:
    mapped = await send(app, tmp_path, fixture("OMI-O23-v251.hl7"), fixture("ORM-O01-01.hl7"))
    assert [m["state"] for m in mapped] == ["mapped", "mapped"], mapped
    request, task = await by_placer(app, "PO-900")
    uid = next(i for i in request["identifier"] if i["system"] == "urn:dicom:uid")
    assert uid["value"] == "urn:oid:1.2.826.0.1.3680043.8.498.12345"
    assert request["priority"] == "asap"
    assert task["status"] == "requested"
    sample, _ = await by_placer(app, "1101")
    assert sample["code"]["coding"][0] == {
        "code": "24725-4", "system": "http://loinc.org", "display": "CT Head"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("orc1", "orc5", "request_status", "task_status"),
    [("CA", "", "revoked", "cancelled"), ("DC", "", "revoked", "cancelled"),
     ("OC", "CA", "revoked", "cancelled"), ("SC", "CM", "completed", "completed"),
     ("SC", "IP", "active", "in-progress")],
)  # fmt: skip
async def test_order_control_updates_the_same_order(
    app: Application, tmp_path: Path, orc1: str, orc5: str, request_status: str, task_status: str
) -> None:
    placer = f"PL-CTL-{orc1}-{orc5}"
    await send(app, tmp_path, zds_order(f"{placer}-NW", placer))
    first, first_task = await by_placer(app, placer)
    update = zds_order(f"{placer}-UPD", placer, orc1=orc1, orc5=orc5)
    if orc1 in ("CA", "DC", "OC"):  # a cancel carries no OBR
        update = "\r".join(s for s in update.split("\r") if not s.startswith("OBR"))
    (record,) = await send(app, tmp_path, update)
    assert record["state"] == "mapped", record["error"]
    request, task = await by_placer(app, placer)
    assert (request["id"], task["id"]) == (first["id"], first_task["id"])
    assert request["status"] == request_status and task["status"] == task_status
    assert request["code"] == first["code"]  # a status-only message keeps the order's content
    unchanged = request_status == first["status"]  # SC/IP: the request stays active
    assert int(request["meta"]["versionId"]) == (1 if unchanged else 2)
    assert int(task["meta"]["versionId"]) == 2


async def test_change_order_xo_updates_the_procedure(app: Application, tmp_path: Path) -> None:
    await send(app, tmp_path, zds_order("XO-NW", "PL-XO"))
    changed = zds_order("XO-1", "PL-XO", orc1="XO", code="MRSPINE^MR Spine^99RAD")
    (record,) = await send(app, tmp_path, changed)
    assert record["state"] == "mapped"
    request, task = await by_placer(app, "PL-XO")
    assert request["code"]["coding"][0]["code"] == "MRSPINE"
    assert request["status"] == "active" and task["status"] == "accepted"
    assert sorted(r.split("/")[0] for r in record["resources"]) == [
        "Encounter", "Patient", "Practitioner", "ServiceRequest", "Task"
    ]  # fmt: skip


async def test_cancel_of_an_unknown_order_fails_and_writes_nothing(
    app: Application, tmp_path: Path
) -> None:
    cancel = zds_order("CA-UNKNOWN", "PL-NEVER-SEEN", orc1="CA", orc5="")
    (record,) = await send(app, tmp_path, cancel)
    assert record["state"] == "failed"
    assert record["error"]["code"] == "204"
    assert "PL-NEVER-SEEN" in record["error"]["text"]
    assert await search(app, "ServiceRequest", ("identifier", "PL-NEVER-SEEN")) == []
    assert record["raw"].rstrip("\r").split("\r")[-1].startswith("ZDS|")  # Z-segment kept


async def test_group_mapping_merges_shared_resources_and_falls_back(app: Application) -> None:
    """OrderMapper.process_many: one transaction for several messages; the same Patient and
    Practitioner once; if one message cannot be mapped, the others still are, one by one."""
    mapper = OrderMapper(V2Tables.load())
    sender = SenderConfig("RIS", "RADHOSP", "Organization/radhosp", {"RADHOSP": MRN})
    group = [parse(zds_order(f"GRP-{n}", f"PL-GRP-{n}")) for n in range(3)]
    outcomes = await mapper.process_many(group, sender, app.service)
    assert all(isinstance(o, list) and len(o) == 5 for o in outcomes), outcomes
    refs = [dict(r.split("/") for r in o) for o in outcomes if isinstance(o, list)]
    assert len({r["Patient"] for r in refs}) == 1 and len({r["ServiceRequest"] for r in refs}) == 3
    for n in range(3):
        request, task = await by_placer(app, f"PL-GRP-{n}")
        assert request["subject"] == {"reference": f"Patient/{refs[0]['Patient']}"}
        assert task["focus"] == {"reference": f"ServiceRequest/{request['id']}"}
    mixed = [
        parse(zds_order("GRP-OK", "PL-GRP-OK")),
        parse(zds_order("GRP-BAD", "PL-GRP-UNKNOWN", orc1="CA", orc5="")),
    ]
    ok, bad = await mapper.process_many(mixed, sender, app.service)
    assert isinstance(ok, list) and isinstance(bad, V2Error) and bad.code == "204"
    assert len(await search(app, "ServiceRequest", ("identifier", "PL-GRP-OK"))) == 1


async def test_group_mapping_finds_an_order_created_earlier_in_the_same_group(
    app: Application,
) -> None:
    """NW then CA of the same order in one group: one transaction, one ServiceRequest, revoked
    (the cancel finds the order the group's first message creates, without a fallback)."""
    mapper = OrderMapper(V2Tables.load())
    sender = SenderConfig("RIS", "RADHOSP", "Organization/radhosp", {"RADHOSP": MRN})
    group = [
        parse(zds_order("SAME-NW", "PL-SAME-1")),
        parse(zds_order("SAME-XO", "PL-SAME-1", orc1="XO", code="CTHEAD^CT Head^99RAD")),
        parse(zds_order("SAME-CA", "PL-SAME-1", orc1="CA", orc5="")),
    ]
    outcomes = await mapper.process_many(group, sender, app.service)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    request, task = await by_placer(app, "PL-SAME-1")
    assert request["status"] == "revoked" and task["status"] == "cancelled"
    assert request["meta"]["versionId"] == "1"  # one merged write, not three one by one
    written = [o[3] for o in outcomes if isinstance(o, list)]
    assert written == [f"ServiceRequest/{request['id']}"] * 3


async def test_worker_maps_a_pass_of_messages_in_groups_each_failing_alone(
    tmp_path: Path,
) -> None:
    """The worker takes the messages a pass finds (the delay lets all four arrive first) as
    one group: the bad one (cancel of an unknown order) fails with its own 204, the others are
    mapped, and the cancel of an order created earlier in the same pass revokes it."""
    async with running_application(
        tmp_path / "data", mllp_port=free_port(), hl7_senders=(SENDER,), hl7_worker_delay=1.5
    ) as late:  # fmt: skip
        await late.service.update(
            CTX, "Organization", "radhosp",
            {"resourceType": "Organization", "id": "radhosp", "name": "Rad Hospital"},
        )  # fmt: skip
        messages = [
            zds_order("PASS-1", "PL-PASS-A"),
            zds_order("PASS-2", "PL-PASS-UNKNOWN", orc1="CA", orc5=""),
            zds_order("PASS-3", "PL-PASS-C"),
            zds_order("PASS-4", "PL-PASS-A", orc1="CA", orc5=""),
        ]
        records = await send(late, tmp_path, *messages)
        assert [r["state"] for r in records] == ["mapped", "failed", "mapped", "mapped"], [
            r["error"] for r in records
        ]
        assert records[1]["error"]["code"] == "204" and records[1]["resources"] == []
        assert "PL-PASS-UNKNOWN" in records[1]["error"]["text"]
        cancelled, _ = await by_placer(late, "PL-PASS-A")
        kept, _ = await by_placer(late, "PL-PASS-C")
        assert cancelled["status"] == "revoked" and kept["status"] == "active"
        assert records[0]["resources"] == records[3]["resources"]
        assert len(await search(late, "Patient")) == 1


async def test_a_repeated_order_stores_no_new_version_of_what_did_not_change(
    app: Application, tmp_path: Path
) -> None:
    """Every ORM repeats the patient's demographics: what equals the stored version (meta
    aside) is answered with it and gets no new version; what changed gets one."""
    (first,) = await send(app, tmp_path, zds_order("SAME-V1", "PL-VERSIONS"))
    again = zds_order("SAME-V2", "PL-VERSIONS", orc1="XO")
    (second,) = await send(app, tmp_path, again)
    assert second["state"] == "mapped" and second["resources"] == first["resources"]
    refs = dict(r.split("/") for r in second["resources"])
    patient = await app.service.read(CTX, "Patient", refs["Patient"])
    practitioner = await app.service.read(CTX, "Practitioner", refs["Practitioner"])
    assert [patient.version.version, practitioner.version.version] == [1, 1]
    renamed = zds_order("SAME-V3", "PL-VERSIONS", orc1="XO", code="CTHEAD^CT Head^99RAD")
    (third,) = await send(app, tmp_path, renamed)
    request, _ = await by_placer(app, "PL-VERSIONS")
    assert third["state"] == "mapped" and request["code"]["coding"][0]["code"] == "CTHEAD"
    assert request["meta"]["versionId"] == "2"  # v1, unchanged, changed
    assert (await app.service.read(CTX, "Patient", refs["Patient"])).version.version == 1
