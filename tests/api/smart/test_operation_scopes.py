"""FHIR operations under SMART (RO-24 controlled access): the REST door's wrapper applies to
``$`` routes as to every interaction (a token is required), and an operation needs a scope
granting its letter (``r`` for the terminology operations) on the type it is invoked on."""

from __future__ import annotations

import pytest

from tests.api.smart.conftest import Smart
from tests.integration.smart_support import make_key, public_jwks

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPAND = "ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender"


async def test_operations_need_a_token_and_a_read_scope_on_the_type(smart: Smart) -> None:
    key = make_key("ES384")
    scopes = "system/ValueSet.r system/Patient.rs"
    await smart.add_client("ops-backend", "backend", jwks=public_jwks(key), scope=scopes)
    anonymous = await smart.fhir("GET", EXPAND)
    assert anonymous.status_code == 401
    patient_only = await smart.backend_token("ops-backend", key, "system/Patient.rs")
    refused = await smart.fhir("GET", EXPAND, patient_only)
    assert refused.status_code == 403, refused.text
    assert "ValueSet" in refused.json()["issue"][0]["diagnostics"]
    value_sets = await smart.backend_token("ops-backend", key, "system/ValueSet.r")
    allowed = await smart.fhir("GET", EXPAND, value_sets)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["expansion"]["total"] == 4
