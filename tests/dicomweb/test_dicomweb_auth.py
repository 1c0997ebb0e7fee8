"""DICOMweb with SMART on: a bearer token is required (401), and scopes on ImagingStudy: read or
search for QIDO-RS/WADO-RS, create for STOW-RS (403 otherwise); dicomweb-client with a token
over a real socket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.api.smart.conftest import BASE, Smart, start_smart
from tests.conftest import free_port
from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import dicomweb_app, imaging_of, serve
from tests.integration.smart_support import JWT_BEARER, client_assertion, make_key, public_jwks

URL = f"{BASE}/dicomweb"


def _multipart(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
        for p in parts
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body + f"--{boundary}--\r\n".encode(), content_type


@asynccontextmanager
async def smart_dicomweb(data_dir: Path, port: int = 8080) -> AsyncIterator[tuple[Smart, Any]]:
    """The SMART harness (:func:`start_smart`, told it listens on ``port``) and the DICOMweb
    app over its application, with the authorization server's token check."""
    smart, stop = await start_smart(data_dir, port=port)
    application = smart.application
    assert application.smart is not None
    imaging, own = imaging_of(application, f"http://127.0.0.1:{port}")
    try:
        if own:
            await imaging.start()
        yield smart, dicomweb_app(application, imaging, application.smart.authenticate)
    finally:
        if own:
            await imaging.stop()
        await stop()


async def test_ro23_dicomweb_needs_a_token_and_imaging_study_scopes(tmp_path: Path) -> None:
    async with smart_dicomweb(tmp_path / "data") as (smart, app):
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


async def test_ro24_dicomweb_client_with_a_token_stores_finds_and_retrieves(tmp_path: Path) -> None:
    """dicomweb-client 0.61 sends ``Host`` without the port on its JSON GETs (QIDO-RS,
    metadata): its token, issued for ``http://127.0.0.1:<port>``, is still this server's and
    its audience this base; a token for another port, or forged, is not taken."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with smart_dicomweb(tmp_path / "data", port) as (smart, app):
        server, task = await serve(app, port)
        try:
            await _token_client_round_trip(smart, base)
        finally:
            server.should_exit = True
            await task


async def _token_client_round_trip(smart: Smart, base: str) -> None:
    """STOW, QIDO, metadata and WADO by dicomweb-client with a token of ``base``."""
    key = make_key("ES384")
    scope = "system/ImagingStudy.crs"
    await smart.add_client("viewer", "backend", jwks=public_jwks(key), scope=scope)
    async with httpx.AsyncClient(base_url=base) as http:
        form = {
            "grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": client_assertion(key, "viewer", f"{base}/auth/token"),
        }  # fmt: skip
        answer = await http.post("/auth/token", data=form)
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        # a token of this server for port 8080, not the one it listens on: refused
        elsewhere = await smart.backend_token("viewer", key, scope)
        refused = await http.get("/dicomweb/studies", headers={
            "Authorization": f"Bearer {elsewhere}", "Host": "127.0.0.1"})  # fmt: skip
        assert refused.status_code == 401, refused.text
        head, claims, _ = token.split(".")
        forged = await http.get("/dicomweb/studies", headers={
            "Authorization": f"Bearer {head}.{claims}.AAAA", "Host": "127.0.0.1"})  # fmt: skip
        assert forged.status_code == 401

    client = DICOMwebClient(f"{base}/dicomweb", headers={"Authorization": f"Bearer {token}"})
    files = ct_study("AUTH-2", "20240106", 2)
    sent = [pydicom.dcmread(BytesIO(f)) for f in files]
    await asyncio.to_thread(client.store_instances, sent)
    found = await asyncio.to_thread(
        client.search_for_studies, search_filters={"PatientID": "AUTH-2"}
    )
    assert len(found) == 1
    study = found[0]["0020000D"]["Value"][0]
    metadata = await asyncio.to_thread(client.retrieve_study_metadata, study)
    assert len(metadata) == 2
    retrieved = await asyncio.to_thread(client.retrieve_study, study)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sent}
    assert sorted(str(ds.SOPInstanceUID) for ds in retrieved) == sorted(by_uid)
    for ds in retrieved:
        assert ds.PixelData == by_uid[str(ds.SOPInstanceUID)].PixelData
    with pytest.raises(Exception, match="401"):
        await asyncio.to_thread(
            DICOMwebClient(f"{base}/dicomweb").search_for_studies,
        )
