"""``--demo`` (what ``make run`` uses): on first start with an empty store, a clearly labelled
demo user, demo clients and demo patients, and how to get a token — printed once and kept in
``DEMO-CREDENTIALS.txt`` (mode 0600) in the data dir. Never for production: the password and
the backend key are only as secret as that file."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

from joserfc import jwk

from fhir_server.auth.server.accounts import new_client, new_user
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError

DEMO_USER = "demo"
DEMO_APP = "demo-app"
DEMO_BACKEND = "demo-backend"
#: The Organization the demo DICOM peer (MODALITY) and HL7 v2 sender (RIS) stand for.
DEMO_HOSPITAL = "demo-hospital"
APP_ORIGIN = "http://127.0.0.1:8000"
_DEMO_TAG = {"system": "urn:fhir-server:demo", "code": "demo", "display": "DEMO DATA - not real"}


async def seed_demo(smart: SmartAuth, data_dir: Path, fhir_base: str) -> bool:
    """Seed once: nothing happens when any user or client exists. True when seeded. The demo
    hospital (the Organization the demo DICOM peer and HL7 sender send for) is ensured on every
    start."""
    ctx = RequestContext(channel="system")
    meta = {"tag": [_DEMO_TAG]}
    try:
        await smart.fhir.read(ctx, "Organization", DEMO_HOSPITAL)
    except FhirError:
        await smart.fhir.update(ctx, "Organization", DEMO_HOSPITAL, {
            "resourceType": "Organization", "id": DEMO_HOSPITAL, "meta": meta,
            "name": "Demo hospital (DEMO DATA)",
        })  # fmt: skip
    if await smart.accounts.users() or await smart.accounts.clients():
        return False
    await smart.fhir.update(ctx, "Practitioner", "demo-practitioner", {
        "resourceType": "Practitioner", "id": "demo-practitioner", "meta": meta,
        "name": [{"family": "Demo", "given": ["Dana"], "prefix": ["Dr."]}],
    })  # fmt: skip
    for pid, family, given, born in (
        ("demo-patient-1", "Popescu", "Ana", "1980-04-12"),
        ("demo-patient-2", "Wang", "Li", "1975-09-30"),
    ):
        await smart.fhir.update(ctx, "Patient", pid, {
            "resourceType": "Patient", "id": pid, "meta": meta,
            "name": [{"family": family, "given": [given]}], "birthDate": born,
        })  # fmt: skip
    password = secrets.token_urlsafe(12)
    await smart.accounts.add_user(new_user(
        DEMO_USER, password, name="Demo clinician (DEMO ACCOUNT)",
        fhir_user="Practitioner/demo-practitioner",
    ))  # fmt: skip
    await smart.accounts.add_client(new_client(
        DEMO_APP, "public", name="Demo SMART app (DEMO CLIENT)",
        redirect_uris=(f"{APP_ORIGIN}/index.html",), launch_uri=f"{APP_ORIGIN}/launch.html",
    ))  # fmt: skip
    key = jwk.ECKey.generate_key(
        "P-384", parameters={"kid": "demo-backend-1", "alg": "ES384"}, private=True
    )
    key_file = data_dir / "demo-backend-key.json"
    _write_private(key_file, json.dumps(key.as_dict(private=True), indent=2))
    await smart.accounts.add_client(new_client(
        DEMO_BACKEND, "backend", name="Demo backend service (DEMO CLIENT)",
        jwks={"keys": [key.as_dict(private=False)]},
        scope="system/*.cruds system/Launch.c system/Admin.cruds",
    ))  # fmt: skip
    text = _instructions(data_dir, fhir_base, password, key_file)
    _write_private(data_dir / "DEMO-CREDENTIALS.txt", text)
    print(text, file=sys.stderr)
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _instructions(data_dir: Path, base: str, password: str, key_file: Path) -> str:
    lines: list[Any] = [
        "=" * 78,
        "DEMO ACCOUNTS CREATED (--demo, empty store). For trying the server only.",
        f"  user        {DEMO_USER} / {password}   (Practitioner/demo-practitioner)",
        f"  app         {DEMO_APP} (public, PKCE), redirect {APP_ORIGIN}/index.html",
        f"  backend     {DEMO_BACKEND} (private_key_jwt ES384), key in {key_file}",
        "  patients    Patient/demo-patient-1, Patient/demo-patient-2",
        "Get a token for the backend client (system scopes):",
        f"  fhir-server token --client {DEMO_BACKEND} --key {key_file} --fhir-base {base}",
        "Launch the demo SMART app: see README.md, 'Launch a SMART app'.",
        f"These lines are also in {data_dir / 'DEMO-CREDENTIALS.txt'}.",
        "=" * 78,
    ]
    return "\n".join(str(line) for line in lines) + "\n"
