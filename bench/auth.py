"""Authorization overhead: FHIR reads and searches with SMART bearer tokens against the same
requests with ``--auth off``, on one store, as ratios measured in the same run.

What a token costs the FHIR door: an RS256 signature check (joserfc), the ``aud``/``exp``
checks, the grant's liveness (revocation; a record-port lookup, then a few seconds' cache), the
scope check in the services (for a ``patient/`` token: compartment narrowing of searches and a
compartment check of each read), and the AuditEvent every identified request produces (stored in
the background through the write pipeline; its cost is counted, as the queue is drained before
each clock stops). The baseline is the raw signature check of the same token with joserfc, the
floor of any JWT-verifying server. In-process (ASGI), one event loop: read the ratios.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from joserfc import jwk, jwt

from bench.rest_core import PATIENT
from fhir_server.auth.keys import SIGNING_ALG
from fhir_server.auth.server.accounts import new_client
from fhir_server.auth.server.state import GrantContext
from fhir_server.auth.tokens import TokenClaims, issue_access_token
from fhir_server.bootstrap import Application, build, make_app
from fhir_server.core.context import RequestContext
from fhir_server.settings import Settings

BASE = "http://127.0.0.1:8080"


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


async def _timed(
    client: httpx.AsyncClient,
    paths: list[str],
    headers: dict[str, str],
    application: Application,
) -> float:
    """Requests per second, including storing the AuditEvents they caused (the trail writes
    in the background; its queue is drained before the clock stops), so that one workload's
    audit writes never slow the next one down."""
    started = time.perf_counter()
    for path in paths:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
    await application.audit.flush()
    return _rate(len(paths), time.perf_counter() - started)


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(dicom_port=0, mllp_port=0, data_dir=Path(tmp) / "server", auth="smart")
        application = build(settings)
        await application.start()
        try:
            await _measure(application, n)
        finally:
            await application.stop()


async def _measure(application: Application, n: int) -> None:
    assert application.smart is not None
    smart = application.smart
    ids = []
    for i in range(200):
        body = {**PATIENT, "id": f"p{i}"}
        await application.service.update(RequestContext(), "Patient", f"p{i}", body)
        ids.append(f"p{i}")
    key = jwk.ECKey.generate_key("P-384", parameters={"kid": "bench"}, private=True)
    await smart.accounts.add_client(
        new_client("bench", "backend", jwks={"keys": [key.as_dict(private=False)]})
    )  # the FHIR door checks that a token's client is still registered
    now = int(time.time())
    tokens = {}
    for name, scope, patient in (
        ("system", "system/*.rs", None),
        ("patient", "patient/*.rs", "p7"),
    ):
        context = GrantContext(grant_id=f"bench-{name}", client_id="bench", scope=scope)
        await smart.state.save_grant(context, 3600)
        claims = TokenClaims(
            issuer=f"{BASE}/auth", audience=f"{BASE}/fhir", subject="bench", client_id="bench",
            scope=scope, grant_id=context.grant_id, issued_at=now, expires_at=now + 3600,
            patient=patient,
        )  # fmt: skip
        tokens[name] = issue_access_token(smart.keyring(), claims)
    keys = smart.keyring().keys
    started = time.perf_counter()
    for _ in range(n):
        jwt.decode(tokens["system"], keys, algorithms=[SIGNING_ALG])
    verify = _rate(n, time.perf_counter() - started)

    secured = make_app(application)
    open_app = make_app(replace(application, smart=None))  # same store, --auth off
    reads = [f"/fhir/Patient/{ids[i % len(ids)]}" for i in range(n)]
    own_reads = ["/fhir/Patient/p7"] * n
    searches = ["/fhir/Patient?birthdate=1974-12-25&_count=10"] * max(1, n // 10)
    rows = []
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=open_app), base_url=BASE) as off,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=secured), base_url=BASE) as on,
    ):
        system = {"Authorization": f"Bearer {tokens['system']}"}
        patient = {"Authorization": f"Bearer {tokens['patient']}"}
        await _timed(off, reads[:50], {}, application)  # warm-up
        rows.append(
            (
                "read",
                await _timed(off, reads, {}, application),
                await _timed(on, reads, system, application),
            )
        )
        rows.append(
            ("read own (patient/)", await _timed(off, own_reads, {}, application),
             await _timed(on, own_reads, patient, application))
        )  # fmt: skip
        rows.append(
            (
                "search",
                await _timed(off, searches, {}, application),
                await _timed(on, searches, system, application),
            )
        )
        rows.append(
            ("search (patient/)", await _timed(off, searches, {}, application),
             await _timed(on, searches, patient, application))
        )  # fmt: skip
    print(f"\nauth  n={n}  baseline: joserfc RS256 verify {verify:,.0f}/s")
    print(f"{'workload':<22}{'auth off/s':>12}{'smart/s':>12}{'smart/off':>11}{'smart/verify':>14}")
    for name, plain, with_token in rows:
        print(
            f"{name:<22}{plain:>12,.0f}{with_token:>12,.0f}{with_token / plain:>11.2f}"
            f"{with_token / verify:>14.3f}"
        )
