"""--dicom-remote and --dicom-peer parsing (fhir_server/dicom/scu.py, fhir_server/settings.py):
bad values are refused with a message naming the expected form."""

from __future__ import annotations

import pytest

from fhir_server.dicom.scu import Peer, RemoteAe, peer_table
from fhir_server.settings import Settings


def test_remote_ae() -> None:
    assert RemoteAe.parse("ORTHANC@127.0.0.1:4242") == RemoteAe("ORTHANC", "127.0.0.1", 4242)
    assert str(RemoteAe.parse("PACS@pacs.example.org:104")) == "PACS@pacs.example.org:104"


@pytest.mark.parametrize("bad", ["ORTHANC", "@h:1", "A@h", "A@h:x", "A_TITLE_LONGER_THAN16@h:1"])
def test_remote_ae_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="AE@host:port"):
        RemoteAe.parse(bad)


def test_peers_with_and_without_address() -> None:
    table = peer_table(["CT1=Organization/spital@10.0.0.7:104", "MR1=Organization/clinica"])
    assert table["CT1"] == Peer("CT1", "Organization/spital", RemoteAe("CT1", "10.0.0.7", 104))
    assert table["MR1"].address is None


@pytest.mark.parametrize("bad", ["CT1", "CT1=Patient/x", "=Organization/x", "CT1=Organization/x@h"])
def test_peer_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Peer.parse(bad)


def test_settings_check_dicom_options() -> None:
    Settings(dicom_remote="ORTHANC@127.0.0.1:4242", dicom_retrieve="get").check()
    assert Settings.from_env({"FHIR_SERVER_DICOM_PRIORS": "manual"}).dicom_priors == "manual"
    with pytest.raises(ValueError, match="--dicom-remote must be AE@host:port"):
        Settings(dicom_remote="ORTHANC:4242").check()
    with pytest.raises(ValueError, match="--dicom-priors"):
        Settings(dicom_priors="sometimes").check()
    with pytest.raises(ValueError, match="--dicom-retrieve"):
        Settings(dicom_retrieve="wado").check()
