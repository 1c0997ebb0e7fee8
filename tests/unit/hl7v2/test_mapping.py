"""ORM^O01 / OMI^O23 → transaction Bundle (no storage): each segment map and each table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_server.conformance import Conformance
from fhir_server.hl7v2.checks import ORDER_CONTROL, ORDER_STATUS
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.errors import V2Error
from fhir_server.hl7v2.inbound import OrderMapper
from fhir_server.hl7v2.mapping.batch import merge
from fhir_server.hl7v2.mapping.tables import TABLE_NAMES, V2Tables, default_folder
from fhir_server.hl7v2.senders import SenderConfig
from fhir_server.terminology import Coding, TerminologyService, TranslateRequest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "hl7v2"
BASE = "https://telemedicine.example.org/fhir"
SYSTEMS = {"CITYHOSP": "urn:oid:1.2.3.4", "RADHOSP": "https://radhosp.example.ro/mrn"}


@pytest.fixture(scope="module")
def tables() -> V2Tables:
    return V2Tables.load()


@pytest.fixture(scope="module")
def mapper(tables: V2Tables) -> OrderMapper:
    return OrderMapper(tables, ZoneInfo("Europe/Bucharest"))


def _bundle(mapper: OrderMapper, name: str, text: str | None = None) -> dict[str, Any]:
    message = parse(text or (FIXTURES / name).read_bytes().decode())
    sender = SenderConfig(message.msh.get(3, 1, 1), "", "Organization/city", SYSTEMS)
    return mapper.transaction(message, sender, {})


def _of(bundle: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == type_]


def test_tables_are_built_from_the_ig() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "mappings" / "v2-to-fhir" / "build.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "No such file" in result.stderr or not Path("/work/shared/data/hl7-v2-to-fhir").is_dir():
        pytest.fail("the IG CSVs are needed to check the tables")
    assert result.returncode == 0, result.stdout


def test_every_table_names_its_source() -> None:
    for name in TABLE_NAMES:
        table = json.loads((default_folder() / f"{name}.json").read_text())
        assert table["source"] and table["licence"] and table["map"], name


def test_checks_and_tables_agree(tables: V2Tables) -> None:
    for code in ORDER_CONTROL - {"SC"}:  # SC takes the Task status from ORC-5
        assert tables.code("order-control-task", code), code
    for code in ORDER_STATUS - {"A"}:
        assert tables.code("order-status", code), code
    for code in ORDER_STATUS:
        assert tables.code("order-status-task", code), code


@pytest.mark.parametrize(
    ("table", "code", "target"),
    [
        ("administrative-sex", "F", "female"),
        ("administrative-sex", "A", "other"),
        ("order-control", "NW", "active"),
        ("order-control", "OC", "revoked"),
        ("order-status", "CM", "completed"),
        ("result-status", "F", "final"),
        ("result-status", "C", "corrected"),
        ("name-type", "L", "official"),
        ("identifier-type", "MR", "MR"),
        ("patient-class", "O", "AMB"),
        ("priority", "S", "stat"),
        ("coding-system", "LN", "http://loinc.org"),
        ("result-status-out", "amended", "C"),
        ("result-status-out", "final", "F"),
    ],
)
def test_table_rows(tables: V2Tables, table: str, code: str, target: str) -> None:
    assert tables.code(table, code) == target


def test_patient_conditional_on_first_pid3_with_sender_system(mapper: OrderMapper) -> None:
    bundle = _bundle(mapper, "ORM-O01-appendix-a.hl7")
    (entry,) = _of(bundle, "Patient")
    patient = entry["resource"]
    assert entry["request"] == {
        "method": "PUT",
        "url": "Patient?identifier=urn%3Aoid%3A1.2.3.4%7CE4567890",
    }
    assert patient["identifier"][0]["system"] == "urn:oid:1.2.3.4"
    assert patient["identifier"][1]["system"] == "urn:fhir-server:hl7v2:USSSA"
    assert patient["identifier"][1]["type"]["coding"][0]["code"] == "SS"
    assert patient["name"][0] == {
        "family": "DOE", "given": ["JANE", "MARIE"], "prefix": ["MS."], "use": "official",
    }  # fmt: skip
    assert patient["name"][1]["use"] == "maiden"
    assert patient["birthDate"] == "1978-05-23"
    assert patient["gender"] == "female"
    assert patient["managingOrganization"] == {"reference": "Organization/city"}


def test_service_request_and_task(mapper: OrderMapper) -> None:
    bundle = _bundle(mapper, "ORM-O01-appendix-a.hl7")
    (sr_entry,) = _of(bundle, "ServiceRequest")
    sr = sr_entry["resource"]
    assert sr_entry["request"]["url"].startswith("ServiceRequest?identifier=")
    kinds = {
        (i.get("type", {}).get("coding", [{}])[0].get("code") or i["type"]["text"]): i["value"]
        for i in sr["identifier"]
    }
    assert kinds == {
        "PLAC": "PLC-20250314-0001",
        "FILL": "FIL-88001",
        "ACSN": "ACC-2025-000123",
        "Requested Procedure ID": "RP-000123",
        "Scheduled Procedure Step ID": "SPS-000123",
    }
    assert sr["status"] == "active"  # ORC-5 SC
    assert sr["intent"] == "order"
    assert sr["priority"] == "routine"
    assert sr["code"]["coding"] == [
        {"code": "74177", "system": "http://www.ama-assn.org/go/cpt",
         "display": "CT ABDOMEN AND PELVIS WITH CONTRAST"},
        {"code": "CTAPW", "display": "CT Abd/Pel w contrast"},
    ]  # fmt: skip
    assert sr["orderDetail"][0]["coding"][0]["code"] == "CT"
    assert sr["authoredOn"] == "2025-03-14T09:30:00+02:00"
    assert sr["occurrenceDateTime"] == "2025-03-14T10:00:00+02:00"
    assert sr["reasonCode"][0]["coding"][0] == {
        "code": "R10.9", "system": "http://hl7.org/fhir/sid/icd-10",
        "display": "Unspecified abdominal pain",
    }  # fmt: skip
    assert "Premedicate per protocol." in sr["note"][1]["text"]
    assert sr["requester"]["reference"] == _of(bundle, "Practitioner")[0]["fullUrl"]
    assert sr["encounter"]["reference"] == _of(bundle, "Encounter")[0]["fullUrl"]
    assert {"system": "urn:fhir-server:hl7v2-sender", "code": "EPICADT^CITYHOSP"} in sr["meta"][
        "tag"
    ]
    (task_entry,) = _of(bundle, "Task")
    task = task_entry["resource"]
    assert task["status"] == "accepted"
    assert task["focus"] == {"reference": sr_entry["fullUrl"]}
    assert task["for"] == {"reference": _of(bundle, "Patient")[0]["fullUrl"]}
    assert task_entry["request"]["url"] == sr_entry["request"]["url"].replace(
        "ServiceRequest", "Task"
    )


def test_practitioner_and_encounter(mapper: OrderMapper) -> None:
    bundle = _bundle(mapper, "ORM-O01-appendix-a.hl7")
    (practitioner,) = _of(bundle, "Practitioner")
    assert practitioner["resource"]["identifier"][0] == {
        "system": "urn:oid:2.16.840.1.113883.4.6", "value": "2345678901",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "NPI"}]},
    }  # fmt: skip
    assert practitioner["resource"]["name"][0]["family"] == "KILDARE"
    (encounter,) = _of(bundle, "Encounter")
    resource = encounter["resource"]
    assert resource["class"]["code"] == "AMB"
    assert resource["identifier"][0]["value"] == "VN20250314-0042"
    assert [p["type"][0]["coding"][0]["code"] for p in resource["participant"]] == ["ATND", "REF"]
    assert resource["period"] == {"start": "2025-03-14T09:00:00+02:00"}


def test_study_uid_from_zds_and_ipc(mapper: OrderMapper) -> None:
    for name, uid in (
        ("ORM-O01-v231-zds.hl7", "1.2.840.113619.2.55.3.604688119.968.1301234567.1"),
        ("OMI-O23-v251.hl7", "1.2.826.0.1.3680043.8.498.12345"),
    ):
        sr = _of(_bundle(mapper, name), "ServiceRequest")[0]["resource"]
        assert {"type": {"text": "Study Instance UID"}, "system": "urn:dicom:uid",
                "value": f"urn:oid:{uid}"} in sr["identifier"]  # fmt: skip


def test_omi_fields(mapper: OrderMapper) -> None:
    sr = _of(_bundle(mapper, "OMI-O23-v251.hl7"), "ServiceRequest")[0]["resource"]
    assert sr["priority"] == "asap"  # TQ1-9
    assert sr["occurrenceDateTime"] == "2025-05-03T08:00:00+03:00"  # TQ1-7 with its offset
    assert sr["orderDetail"][0]["coding"][0]["code"] == "CR"  # IPC-5
    accession = [i for i in sr["identifier"] if i.get("type", {}).get("coding")]
    assert any(i["value"] == "ACC-900" for i in accession)
    assert sr["reasonCode"][0]["text"] == "Persistent cough"
    assert "Headache" not in json.dumps(sr)


@pytest.mark.parametrize(
    ("control", "status", "request_status", "task_status"),
    [
        ("NW", "", "active", "requested"),
        ("XO", "", "active", "requested"),
        ("CA", "", "revoked", "cancelled"),
        ("OC", "", "revoked", "cancelled"),
        ("DC", "IP", "revoked", "cancelled"),
        ("SC", "CM", "completed", "completed"),
        ("SC", "IP", "active", "in-progress"),
        ("SC", "HD", "on-hold", "on-hold"),
        ("HD", "", "on-hold", "on-hold"),
    ],
)
def test_order_control_statuses(
    mapper: OrderMapper, control: str, status: str, request_status: str, task_status: str
) -> None:
    raw = (FIXTURES / "ORM-O01-v231-zds.hl7").read_bytes().decode()
    raw = raw.replace(
        "ORC|NW|A103Z^RIS|B103Z^PACS||SC|", f"ORC|{control}|A103Z^RIS|B103Z^PACS||{status}|"
    )
    bundle = _bundle(mapper, "", raw)
    assert _of(bundle, "ServiceRequest")[0]["resource"]["status"] == request_status
    assert _of(bundle, "Task")[0]["resource"]["status"] == task_status


def test_escaped_text_is_read(mapper: OrderMapper) -> None:
    sr = _of(_bundle(mapper, "ORM-O01-v231-zds.hl7"), "ServiceRequest")[0]["resource"]
    assert sr["note"][0]["text"] == "Relevant clinical information: Headache & vertigo, r/o mass"


def test_bad_birth_date_names_the_field(mapper: OrderMapper) -> None:
    raw = (FIXTURES / "ORM-O01-v231-zds.hl7").read_bytes().decode().replace("19650212", "1965021")
    with pytest.raises(V2Error) as caught:
        _bundle(mapper, "", raw)
    assert (caught.value.segment, caught.value.field, caught.value.code) == ("PID", 7, "102")


def _conceptmap(rid: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (ROOT / "terminology" / f"ConceptMap-{rid}.json").read_text(encoding="utf-8")
    )
    return found


@pytest.mark.parametrize(
    ("rid", "tables_used"),
    [
        ("v2-order-control-to-request-status", ("order-control-request", "order-control")),
        ("v2-order-status-to-request-status", ("order-status",)),
        ("v2-order-control-to-task-status", ("order-control-task",)),
        ("v2-order-status-to-task-status", ("order-status-task",)),
        ("v2-priority-to-request-priority", ("priority",)),
        ("v2-administrative-sex-to-gender", ("administrative-sex",)),
    ],
)
def test_conceptmaps_say_what_the_mapping_does(
    tables: V2Tables, rid: str, tables_used: tuple[str, ...]
) -> None:
    """terminology/ carries the same facts as the tables, so $translate answers as we map."""
    (group,) = _conceptmap(rid)["group"]
    assert group["source"].startswith("http://terminology.hl7.org/CodeSystem/v2-")
    mapped = {e["code"]: e["target"][0]["code"] for e in group["element"]}
    for code, target in mapped.items():
        expected = next(t for name in tables_used if (t := tables.code(name, code)))
        assert target == expected, code
    assert mapped


def test_translate_an_order_control_code(tables: V2Tables) -> None:
    service = TerminologyService(
        Conformance.of([_conceptmap("v2-order-control-to-request-status")])
    )
    answer = service.translate(
        TranslateRequest(
            [Coding("http://terminology.hl7.org/CodeSystem/v2-0119", "CA")],
            url=f"{BASE}/ConceptMap/v2-order-control-to-request-status",
        )
    )
    (match,) = [p for p in answer["parameter"] if p["name"] == "match"]
    concept = next(x for x in match["part"] if x["name"] == "concept")["valueCoding"]
    assert concept["code"] == "revoked"  # our filler row, not the IG's "active"


def test_merge_keeps_one_entry_per_conditional_url(mapper: OrderMapper) -> None:
    first = _bundle(mapper, "ORM-O01-v231-zds.hl7")
    raw = (FIXTURES / "ORM-O01-v231-zds.hl7").read_bytes().decode().replace("A103Z", "A104Z")
    second = _bundle(mapper, "", raw.replace("POPESCU^ION", "POPESCU^IOAN"))
    merged, positions = merge([first, second])
    kinds = [e["resource"]["resourceType"] for e in merged["entry"]]
    assert sorted(kinds) == sorted(
        ["Patient", "Encounter", "Practitioner", "ServiceRequest", "Task", "ServiceRequest", "Task"]
    )
    assert positions[0] == [0, 1, 2, 3, 4] and positions[1][:3] == [0, 1, 2]
    patient = merged["entry"][0]
    assert patient["resource"]["name"][0]["given"] == ["IOAN", "A"]  # the later message wins
    second_request = merged["entry"][positions[1][3]]["resource"]
    assert second_request["subject"] == {"reference": patient["fullUrl"]}
    assert second_request["requester"] == {"reference": merged["entry"][2]["fullUrl"]}


def test_bundles_of_one_group_share_the_fullurl_of_a_conditional_url(mapper: OrderMapper) -> None:
    """What process_many builds: the second order of the same patient names the first one's
    Patient, Encounter and Practitioner by the same fullUrl, so the merge rewrites nothing."""
    raw = (FIXTURES / "ORM-O01-v231-zds.hl7").read_bytes().decode()
    sender = SenderConfig("RIS", "HOSP", None, {})
    urls: dict[str, str] = {}
    first = mapper.transaction(parse(raw), sender, {}, {}, urls)
    second = mapper.transaction(parse(raw.replace("A103Z", "A104Z")), sender, {}, {}, urls)
    pairs = zip(first["entry"], second["entry"], strict=True)
    same = [a["fullUrl"] == b["fullUrl"] for a, b in pairs]
    assert same == [True, True, True, False, False]  # the ServiceRequest and Task are new
    merged, _ = merge([first, second])
    assert len(merged["entry"]) == 7
    second_request = merged["entry"][5]["resource"]
    assert second_request["subject"] == {"reference": first["entry"][0]["fullUrl"]}
    alone = mapper.transaction(parse(raw), sender, {})  # without a group: fresh fullUrls
    assert alone["entry"][0]["fullUrl"] != first["entry"][0]["fullUrl"]
