"""Terminology operations over HTTP (http://hl7.org/fhir/R4/operations.html,
terminology-service.html): $lookup, $validate-code (ValueSet and CodeSystem), $expand and
$translate at type and instance level, by GET and POST; their errors; the CapabilityStatement
listing; and the ``:in``/``:not-in`` search modifiers on SQLite and MongoDB.

The socket variant shares one server across tests: stored resources get unique urls/ids.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.core import fhirjson
from fhir_server.validation import validate_structure
from tests.api.test_http_read_write import json_of
from tests.conftest import asgi_client, running_application
from tests.mongoeco.fixture import database_url

GENDER = "http://hl7.org/fhir/administrative-gender"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
STATUS_VS = "http://hl7.org/fhir/ValueSet/observation-status"
VITALS_VS = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"
GENDER_MAP = "http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v3"
LOINC = "http://loinc.org"


def value(parameters: dict[str, Any], name: str) -> Any:
    for p in parameters["parameter"]:
        if p["name"] == name:
            return next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
    return None


def issue(response: httpx.Response) -> dict[str, Any]:
    body = json_of(response)
    assert body["resourceType"] == "OperationOutcome", body
    return dict(body["issue"][0])


def parameters(*items: tuple[str, str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": n, kind: v} for n, kind, v in items],
    }


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers={"content-type": "application/fhir+json"})


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await post(client, f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 201, response.text
    return str(json_of(response)["id"])


def shapes(url: str) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem", "url": url, "status": "active", "content": "complete",
        "name": "Shapes", "concept": [
            {"code": "round", "display": "Round", "concept": [{"code": "circle",
                                                               "display": "Circle"}]},
            {"code": "square", "display": "Square"},
        ],
    }  # fmt: skip


# --- $lookup ------------------------------------------------------------------------------------


async def test_lookup_get_post_and_instance(client: httpx.AsyncClient) -> None:
    got = await client.get("/fhir/CodeSystem/$lookup", params={"system": GENDER, "code": "female"})
    assert got.status_code == 200, got.text
    assert value(json_of(got), "display") == "Female"
    posted = await post(
        client, "/fhir/CodeSystem/$lookup",
        parameters(("coding", "valueCoding", {"system": GENDER, "code": "male"})),
    )  # fmt: skip
    assert posted.status_code == 200, posted.text
    assert value(json_of(posted), "display") == "Male"
    id = await create(client, shapes(f"urn:uuid:{uuid.uuid4()}"))
    instance = await client.get(f"/fhir/CodeSystem/{id}/$lookup", params={"code": "circle"})
    assert instance.status_code == 200, instance.text
    assert value(json_of(instance), "display") == "Circle"


async def test_lookup_errors_name_the_parameter(client: httpx.AsyncClient) -> None:
    missing = await client.get("/fhir/CodeSystem/$lookup", params={"system": GENDER})
    assert missing.status_code == 400
    assert issue(missing)["expression"] == ["code"]
    unknown = await client.get(
        "/fhir/CodeSystem/$lookup", params={"system": "http://nowhere", "code": "x"}
    )
    assert unknown.status_code == 404 and "http://nowhere" in issue(unknown)["diagnostics"]
    no_code = await client.get(
        "/fhir/CodeSystem/$lookup", params={"system": GENDER, "code": "nope"}
    )
    assert no_code.status_code == 404 and "'nope'" in issue(no_code)["diagnostics"]
    bad = await client.get(
        "/fhir/CodeSystem/$lookup", params={"system": GENDER, "code": "male", "bogus": "1"}
    )
    assert bad.status_code == 400 and issue(bad)["expression"] == ["bogus"]


# --- $validate-code -----------------------------------------------------------------------------


async def test_value_set_validate_code(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/fhir/ValueSet/$validate-code",
        params={"url": GENDER_VS, "system": GENDER, "code": "male", "display": "Man"},
    )
    assert ok.status_code == 200, ok.text
    assert value(json_of(ok), "result") is True
    assert "Male" in value(json_of(ok), "message")
    concept = {"coding": [{"system": "urn:x", "code": "1"}, {"system": GENDER, "code": "other"}]}
    posted = await post(
        client, "/fhir/ValueSet/$validate-code",
        parameters(("url", "valueUri", GENDER_VS),
                   ("codeableConcept", "valueCodeableConcept", concept)),
    )  # fmt: skip
    assert posted.status_code == 200 and value(json_of(posted), "result") is True
    wrong = await client.get(
        "/fhir/ValueSet/$validate-code", params={"url": STATUS_VS, "code": "male"}
    )
    assert value(json_of(wrong), "result") is False
    url = f"urn:uuid:{uuid.uuid4()}"
    id = await create(client, {"resourceType": "ValueSet", "status": "active", "url": url,
                               "compose": {"include": [{"system": GENDER}]}})  # fmt: skip
    instance = await client.get(f"/fhir/ValueSet/{id}/$validate-code", params={"code": "unknown"})
    assert instance.status_code == 200 and value(json_of(instance), "result") is True


async def test_validate_code_errors(client: httpx.AsyncClient) -> None:
    unknown = await client.get(
        "/fhir/ValueSet/$validate-code", params={"url": "http://nowhere/vs", "code": "x"}
    )
    assert unknown.status_code == 404
    assert "http://nowhere/vs" in issue(unknown)["diagnostics"]
    missing = await client.get("/fhir/ValueSet/$validate-code", params={"url": GENDER_VS})
    assert missing.status_code == 400 and issue(missing)["expression"] == ["code"]
    no_url = await client.get("/fhir/ValueSet/$validate-code", params={"code": "male"})
    assert no_url.status_code == 400 and issue(no_url)["expression"] == ["url"]
    flag = await client.get(
        "/fhir/ValueSet/$validate-code", params={"url": GENDER_VS, "code": "x", "abstract": "y"}
    )
    assert flag.status_code == 400 and issue(flag)["expression"] == ["abstract"]
    both = await post(
        client, "/fhir/ValueSet/$validate-code",
        parameters(("url", "valueUri", GENDER_VS), ("code", "valueCode", "male"),
                   ("coding", "valueCoding", {"system": GENDER, "code": "male"})),
    )  # fmt: skip
    assert both.status_code == 400 and issue(both)["expression"] == ["coding"]


async def test_code_system_validate_code(client: httpx.AsyncClient) -> None:
    ok = await client.get(
        "/fhir/CodeSystem/$validate-code", params={"url": GENDER, "code": "female"}
    )
    assert ok.status_code == 200 and value(json_of(ok), "result") is True
    no = await client.get("/fhir/CodeSystem/$validate-code", params={"url": GENDER, "code": "f"})
    assert value(json_of(no), "result") is False
    posted = await post(
        client, "/fhir/CodeSystem/$validate-code",
        parameters(("url", "valueUri", GENDER),
                   ("coding", "valueCoding", {"system": GENDER, "code": "male",
                                              "display": "Male"})),
    )  # fmt: skip
    assert posted.status_code == 200 and value(json_of(posted), "result") is True
    id = await create(client, shapes(f"urn:uuid:{uuid.uuid4()}"))
    instance = await client.get(f"/fhir/CodeSystem/{id}/$validate-code", params={"code": "circle"})
    assert instance.status_code == 200 and value(json_of(instance), "display") == "Circle"


# --- $expand ------------------------------------------------------------------------------------


async def test_expand_get_with_paging_and_filter(client: httpx.AsyncClient) -> None:
    page = await client.get(
        "/fhir/ValueSet/$expand", params={"url": STATUS_VS, "count": "2", "offset": "1"}
    )
    assert page.status_code == 200, page.text
    expansion = json_of(page)["expansion"]
    assert expansion["total"] == 8 and expansion["offset"] == 1
    assert len(expansion["contains"]) == 2
    assert expansion["identifier"].startswith("urn:uuid:") and expansion["timestamp"]
    assert {"name": "count", "valueInteger": 2} in expansion["parameter"]
    filtered = await client.get(
        "/fhir/ValueSet/$expand", params={"url": STATUS_VS, "filter": "amend"}
    )
    assert [c["code"] for c in json_of(filtered)["expansion"]["contains"]] == ["amended"]


async def test_expand_post_parameters_plain_resource_and_instance(
    client: httpx.AsyncClient,
) -> None:
    url = f"urn:uuid:{uuid.uuid4()}"
    system = f"urn:uuid:{uuid.uuid4()}"
    vs = {
        "resourceType": "ValueSet",
        "status": "active",
        "url": url,
        "compose": {
            "include": [
                {"system": system, "concept": [{"code": "a", "display": "A"}, {"code": "b"}]}
            ]
        },
    }
    posted = await post(client, "/fhir/ValueSet/$expand", parameters(("valueSet", "resource", vs)))
    assert posted.status_code == 200, posted.text
    assert [c["code"] for c in json_of(posted)["expansion"]["contains"]] == ["a", "b"]
    plain = await post(client, "/fhir/ValueSet/$expand", vs)
    assert plain.status_code == 200 and json_of(plain)["expansion"]["total"] == 2
    id = await create(client, vs)
    instance = await client.get(f"/fhir/ValueSet/{id}/$expand")
    assert instance.status_code == 200 and json_of(instance)["url"] == url
    by_url = await post(
        client, "/fhir/ValueSet/$expand", parameters(("url", "valueUri", GENDER_VS))
    )
    assert json_of(by_url)["expansion"]["total"] == 4


async def test_expand_errors(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/fhir/ValueSet/$expand", params={"url": "http://nowhere/vs"})
    assert unknown.status_code == 404
    assert "http://nowhere/vs" in issue(unknown)["diagnostics"]
    snomed = await client.get(
        "/fhir/ValueSet/$expand", params={"url": "http://hl7.org/fhir/ValueSet/clinical-findings"}
    )
    assert snomed.status_code == 400
    assert issue(snomed)["code"] == "not-supported"
    assert "http://snomed.info/sct" in issue(snomed)["diagnostics"]
    count = await client.get("/fhir/ValueSet/$expand", params={"url": STATUS_VS, "count": "-1"})
    assert count.status_code == 400 and issue(count)["expression"] == ["count"]
    gone = await client.get("/fhir/ValueSet/no-such-id/$expand")
    assert gone.status_code == 404


# --- $translate ---------------------------------------------------------------------------------


async def test_translate_get_post_and_instance(client: httpx.AsyncClient) -> None:
    got = await client.get(
        "/fhir/ConceptMap/$translate", params={"url": GENDER_MAP, "system": GENDER, "code": "male"}
    )
    assert got.status_code == 200, got.text
    assert value(json_of(got), "result") is True
    posted = await post(
        client, "/fhir/ConceptMap/$translate",
        parameters(("coding", "valueCoding", {"system": GENDER, "code": "female"}),
                   ("source", "valueUri", GENDER_VS)),
    )  # fmt: skip
    match = value(json_of(posted), "match")
    concept = next(p["valueCoding"] for p in match if p["name"] == "concept")
    assert concept["code"] == "F"
    source, target = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    id = await create(
        client,
        {
            "resourceType": "ConceptMap",
            "status": "active",
            "group": [
                {
                    "source": source,
                    "target": target,
                    "element": [{"code": "1", "target": [{"code": "one", "equivalence": "equal"}]}],
                }
            ],
        },
    )
    instance = await client.get(
        f"/fhir/ConceptMap/{id}/$translate", params={"system": source, "code": "1"}
    )
    assert instance.status_code == 200 and value(json_of(instance), "result") is True


async def test_answers_are_valid_r4(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/fhir/CodeSystem/$lookup", params={"system": GENDER, "code": "male"}),
        await client.get("/fhir/ValueSet/$expand", params={"url": STATUS_VS, "count": "3"}),
        await client.get(
            "/fhir/ValueSet/$validate-code",
            params={"url": GENDER_VS, "code": "male", "display": "x"},
        ),
        await client.get(
            "/fhir/ConceptMap/$translate",
            params={"url": GENDER_MAP, "system": GENDER, "code": "male"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        resource = fhirjson.loads(answer.content)
        issues = validate_structure(resource)
        assert issues == [], [(i.expression, i.diagnostics) for i in issues]


# --- routing, errors, capabilities -------------------------------------------------------------


async def test_unknown_operation_and_wrong_level(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/fhir/Patient/$everything-else")
    assert unknown.status_code == 400
    assert "$everything-else" in issue(unknown)["diagnostics"]
    system = await client.post("/fhir/$nope", json={"resourceType": "Parameters"})
    assert system.status_code == 400 and "$nope" in issue(system)["diagnostics"]
    wrong = await client.get("/fhir/Patient/$expand")
    assert wrong.status_code == 400 and "ValueSet" in issue(wrong)["diagnostics"]
    not_parameters = await post(client, "/fhir/CodeSystem/$lookup", {"resourceType": "Patient"})
    assert not_parameters.status_code == 400


async def test_capability_statement_lists_the_operations(client: httpx.AsyncClient) -> None:
    statement = json_of(await client.get("/fhir/metadata"))
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    listed = {o["definition"] for o in by_type["ValueSet"]["operation"]}
    validate = "http://hl7.org/fhir/OperationDefinition/Resource-validate"  # on every type
    assert listed == {
        "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
        "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
        validate,
    }
    assert {o["name"] for o in by_type["CodeSystem"]["operation"]} == {
        "lookup", "validate-code", "validate",
    }  # fmt: skip
    assert {o["name"] for o in by_type["ConceptMap"]["operation"]} == {"translate", "validate"}
    assert {o["name"] for o in by_type["Patient"]["operation"]} == {"validate"}


# --- :in and :not-in ----------------------------------------------------------------------------


def observation(tag: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": tag, "value": code}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }  # fmt: skip


async def in_and_not_in(client: httpx.AsyncClient) -> None:
    tag = f"urn:uuid:{uuid.uuid4()}"
    temperature = await create(client, observation(tag, "8310-5"))  # in the vital signs set
    other = await create(client, observation(tag, "12345-6"))
    base = {"identifier": f"{tag}|"}

    async def ids(**params: str) -> set[str]:
        response = await client.get("/fhir/Observation", params={**base, **params})
        assert response.status_code == 200, response.text
        return {e["resource"]["id"] for e in json_of(response).get("entry", [])}

    assert await ids(**{"code:in": VITALS_VS}) == {temperature}
    assert await ids(**{"code:not-in": VITALS_VS}) == {other}
    assert await ids(**{"status:in": STATUS_VS}) == {temperature, other}
    assert await ids(**{"status:not-in": STATUS_VS}) == set()
    unknown = await client.get("/fhir/Observation", params={"code:in": "http://nowhere/vs"})
    assert unknown.status_code == 400
    assert issue(unknown)["expression"] == ["code:in"]
    assert "http://nowhere/vs" in issue(unknown)["diagnostics"]
    snomed = "http://hl7.org/fhir/ValueSet/clinical-findings"
    cannot = await client.get("/fhir/Observation", params={"code:not-in": snomed})
    assert cannot.status_code == 400 and issue(cannot)["expression"] == ["code:not-in"]


async def test_in_and_not_in_search(client: httpx.AsyncClient) -> None:
    await in_and_not_in(client)


async def test_token_below_and_above_by_subsumption(client: httpx.AsyncClient) -> None:
    act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    tag = f"urn:uuid:{uuid.uuid4()}"
    made = {}
    for code in ("IMP", "ACUTE", "AMB"):
        made[code] = await create(client, {
            "resourceType": "Encounter", "status": "finished",
            "identifier": [{"system": tag, "value": code}],
            "class": {"system": act_code, "code": code},
        })  # fmt: skip

    async def ids(name: str, value: str) -> set[str]:
        response = await client.get(
            "/fhir/Encounter", params={"identifier": f"{tag}|", name: value}
        )
        assert response.status_code == 200, response.text
        return {e["resource"]["id"] for e in json_of(response).get("entry", [])}

    assert await ids("class:below", f"{act_code}|IMP") == {made["IMP"], made["ACUTE"]}
    assert await ids("class:above", f"{act_code}|ACUTE") == {made["IMP"], made["ACUTE"]}
    no_system = await client.get("/fhir/Encounter", params={"class:below": "IMP"})
    assert no_system.status_code == 400 and issue(no_system)["expression"] == ["class:below"]


@pytest.mark.mongo
async def test_in_and_not_in_search_on_mongodb(tmp_path: Path, mongo_server: str) -> None:
    store = database_url(mongo_server, str(tmp_path))
    async with running_application(tmp_path / "data", store=store) as app, asgi_client(app) as c:
        await in_and_not_in(c)
