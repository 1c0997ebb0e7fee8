"""DICOMweb with SMART on: a bearer token is required (401), and scopes on ImagingStudy: read or
search for QIDO-RS/WADO-RS, create for STOW-RS (403 otherwise)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from fhir_server.imaging.service import ImagingService
from tests.api.smart.conftest import BASE, start_smart
from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import dicomweb_app, imaging_of
from tests.integration.smart_support import make_key, public_jwks

URL = f"{BASE}/dicomweb"


def _multipart(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
        for p in parts
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body + f"--{boundary}--\r\n".encode(), content_type


async def test_ro23_dicomweb_needs_a_token_and_imaging_study_scopes(tmp_path: Path) -> None:
    smart, stop = await start_smart(tmp_path / "data")
    imaging: ImagingService | None = None
    own = False
    try:
        application = smart.application
        assert application.smart is not None
        imaging, own = imaging_of(application, BASE)
        if own:
            await imaging.start()
        app = dicomweb_app(application, imaging, application.smart.authenticate)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        key = make_key("ES384")
        await smart.add_client(
            "pacs-bridge", "backend", jwks=public_jwks(key),
            scope="system/ImagingStudy.crs system/Patient.rs",
        )  # fmt: skip
        reader = await smart.backend_token("pacs-bridge", key, "system/ImagingStudy.rs")
        writer = await smart.backend_token("pacs-bridge", key, "system/ImagingStudy.crs")
        patients = await smart.backend_token("pacs-bridge", key, "system/Patient.rs")
        files = ct_study("AUTH-1", "20240105", 1)
        body, content_type = _multipart(files)

        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:

            async def get(path: str, token: str | None) -> httpx.Response:
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                return await http.get(f"{URL}{path}", headers=headers)

            async def post(token: str) -> httpx.Response:
                headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
                return await http.post(f"{URL}/studies", content=body, headers=headers)

            missing = await get("/studies", None)
            assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
            assert (await get("/studies", "not-a-token")).status_code == 401
            denied = await get("/studies", patients)
            assert denied.status_code == 403 and "ImagingStudy" in denied.text
            refused = await post(reader)
            assert refused.status_code == 403 and "create (c)" in refused.text
            stored = await post(writer)
            assert stored.status_code == 200, stored.text
            found = await get("/studies?PatientID=AUTH-1", reader)
            assert found.status_code == 200 and len(found.json()) == 1
            study = found.json()[0]["0020000D"]["Value"][0]
            assert (await get(f"/studies/{study}", patients)).status_code == 403
            assert (await get(f"/studies/{study}/metadata", reader)).status_code == 200
    finally:
        if own and imaging is not None:
            await imaging.stop()
        await stop()
