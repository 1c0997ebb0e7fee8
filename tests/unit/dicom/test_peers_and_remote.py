"""--dicom-remote and --dicom-peer parsing (fhir_server/dicom/scu.py, fhir_server/settings.py):
bad values are refused with a message naming the expected form."""

from __future__ import annotations

import ssl

import pytest

from fhir_server.dicom.scu import AssociationFailed, Peer, RemoteAe, peer_table
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


def test_ro24_tls_peers_and_remote() -> None:
    """``;tls`` asks for TLS; a TLS peer without a client context cannot be reached (it never
    falls back to plain TCP); any other option is refused."""
    remote = RemoteAe.parse("PACS@pacs.example.org:2762;tls")
    assert remote.tls and str(remote) == "PACS@pacs.example.org:2762;tls"
    assert RemoteAe.parse("PACS@h:104").tls_args() is None
    with pytest.raises(AssociationFailed, match="no client TLS context"):
        remote.tls_args()
    context = ssl.create_default_context()
    assert remote.secured(context).tls_args() == (context, "pacs.example.org")
    assert RemoteAe.parse("PACS@h:104").secured(context).context is None
    peer = Peer.parse("CT1=Organization/spital@10.0.0.7:2762;tls")
    assert peer.address is not None and peer.address.tls
    with pytest.raises(ValueError, match="only option"):
        RemoteAe.parse("PACS@h:104;ssl")
    Settings(dicom_remote="PACS@10.0.0.5:2762;tls").check()
    Settings.from_env({"FHIR_SERVER_DICOM_TLS_CA": "/etc/ca.pem"}).check()
