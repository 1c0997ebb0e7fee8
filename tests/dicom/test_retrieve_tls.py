"""RO-24 / RO-23: the node reaches a peer written ``AE@host:port;tls`` over TLS — dcmtk's
``storescp +tls`` as the C-MOVE destination of a study asked for by ``movescu``: the instances
arrive; the peer's certificate is verified against ``--dicom-tls-ca`` (without it, a self-signed
destination is not trusted and the move fails with 0xA801); a peer without ``;tls`` is not
reached over TLS."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from fhir_server.bootstrap import Application
from fhir_server.imaging.store_result import Sender
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study
from tests.dicom.test_node import dcmtk
from tests.dicom.test_node_bad_input import self_signed

pytestmark = pytest.mark.skipif(shutil.which("storescp") is None, reason="dcmtk is not installed")


@contextmanager
def tls_storescp(port: int, cert: Path, key: Path, out: Path) -> Iterator[None]:
    """dcmtk's storage SCP on 127.0.0.1:port over TLS (no client certificate asked)."""
    process = subprocess.Popen(
        ["storescp", "+tls", str(key), str(cert), "-ic", "-aet", "DEST", "-od", str(out),
         "--accept-all", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"TCP_NODELAY": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


async def seed(app: Application, patient: str) -> tuple[str, list[str]]:
    files = ct_study(patient, "20261201", 2)
    assert app.imaging is not None
    for data in files:
        result = await app.imaging.store_part10(data, Sender(None, None, "test"))
        assert result.ok, result.comment
    await app.imaging.flush()
    datasets = [pydicom.dcmread(BytesIO(f)) for f in files]
    return str(datasets[0].StudyInstanceUID), [str(d.SOPInstanceUID) for d in datasets]


async def move(port: int, study: str) -> subprocess.CompletedProcess[bytes]:
    return await dcmtk(
        "movescu", "-S", "-aet", "ASKER", "-aec", "FHIRSERVER", "-aem", "DEST",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
        "127.0.0.1", str(port),
    )  # fmt: skip


async def test_ro24_move_to_a_tls_peer_verifies_it(tmp_path: Path) -> None:
    cert, key = await asyncio.to_thread(self_signed, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dest = free_port()
    peer = f"DEST=Organization/reader@127.0.0.1:{dest};tls"
    with tls_storescp(dest, cert, key, out):
        port = free_port()
        async with running_application(
            tmp_path / "trusting", dicom_port=port, dicom_peers=(peer,), dicom_tls_ca=cert
        ) as app:  # fmt: skip
            study, sops = await seed(app, "RO24-TLS")
            done = await move(port, study)
            assert done.returncode == 0, done.stdout + done.stderr
        arrived = {str(pydicom.dcmread(p).SOPInstanceUID) for p in out.iterdir()}
        assert arrived == set(sops)
        port = free_port()
        async with running_application(
            tmp_path / "untrusting", dicom_port=port, dicom_peers=(peer,)
        ) as app:  # fmt: skip
            study, _ = await seed(app, "RO24-TLS-2")
            refused = await move(port, study)
            text = (refused.stdout + refused.stderr).decode(errors="replace")
            assert "MoveDestinationUnknown" in text or "0xa801" in text.lower(), text
        assert len(list(out.iterdir())) == 2  # nothing sent to an unverified peer
