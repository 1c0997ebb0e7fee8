"""Settings of the server: command-line options, each also a ``FHIR_SERVER_*`` variable.

Nothing is read at import time: :func:`Settings.from_env` is called by the CLI (or a test).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir_server.core.urls import without_credentials

PREFIX = "FHIR_SERVER_"
#: A DICOM peer as ``AE@host:port`` (AE title: 1 to 16 characters, no backslash).
_REMOTE_AE = re.compile(r"[^\\@]{1,16}@[^@:\s]+:\d{1,5}(;tls)?")
_DESTINATION = re.compile(r"[^=\s]+=[^=\s]+:\d{1,5}")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("./var"))
    #: Where resources live: None (or "sqlite") for the embedded SQLite store in ``data_dir``,
    #: or a MongoDB connection string (``mongodb://…`` / ``mongodb+srv://…``).
    store: str | None = None
    #: "smart" (SMART on FHIR authorization server and bearer tokens on the FHIR API) or "off"
    #: (no authorization at all: loopback development only).
    auth: str = "smart"
    insecure: bool = False
    #: An external identity provider whose access tokens are accepted too (issuer + JWKS URL).
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_audience: str | None = None
    #: Create a clearly labelled demo user, demo clients and demo patients in an empty store.
    demo: bool = False
    base_url: str | None = None
    log_level: str = "info"
    sqlite_synchronous: str = "FULL"
    referential_integrity: bool = True
    max_body_bytes: int = 50 * 1024 * 1024
    max_bundle_entries: int = 10_000
    #: Check the R4 core invariants (FHIRPath constraints) on every write, not only on resources
    #: that claim or must meet a profile (those are always checked completely).
    core_invariants: bool = False
    #: The rule set saying which resources must meet which profiles (JSON, see
    #: profiles/rulesets/README.md): None for the shipped telemedicine rule set, "off" for none.
    validation_rules: str | None = None
    #: Folders of the server's own canonical resources (profiles and terminology), stored and
    #: loaded at start-up; None for the project's profiles/ and terminology/ folders.
    conformance_dirs: tuple[Path, ...] | None = None
    #: The DICOM door (DIMSE SCP): TCP port (0 disables it) and the node's AE title.
    dicom_port: int = 11112
    dicom_aet: str = "FHIRSERVER"
    #: The remote PACS holding prior studies (RO-16/RO-17): ``AE@host:port``; None: no priors.
    dicom_remote: str | None = None
    #: When priors are fetched from it: "auto" (when a patient's new study arrives, and on
    #: request), "manual" (only ``ImagingStudy/$fetch-priors``) or "off".
    dicom_priors: str = "auto"
    #: How priors are retrieved: "move" (C-MOVE to our node; the remote must know our AE) or
    #: "get" (C-GET on the query's association: no inbound connection needed).
    dicom_retrieve: str = "move"
    #: The DICOM node's address (None: the same as --host); calling AEs allowed with auth on
    #: (``AE=Organization/<id>[@host:port]``); optional TLS (PEM chain and key); RO-14 gate
    #: policy (``check=action,...`` over the defaults).
    dicom_host: str | None = None
    dicom_peers: tuple[str, ...] = ()
    dicom_tls_cert: Path | None = None
    dicom_tls_key: Path | None = None
    #: CA certificates (PEM) that the peers the node connects to over TLS (``;tls``) are
    #: verified against; None: the system's CAs.
    dicom_tls_ca: Path | None = None
    dicom_gate: str | None = None
    #: The HL7 v2 door (MLLP listener): TCP port (0 disables it).
    mllp_port: int = 2575
    #: The MLLP listener's address (None: the same as --host), idle/read timeout in seconds,
    #: maximum message size, optional TLS (PEM certificate chain and key).
    mllp_host: str | None = None
    mllp_read_timeout: float = 300.0
    mllp_max_message_bytes: int = 4 * 1024 * 1024
    mllp_tls_cert: Path | None = None
    mllp_tls_key: Path | None = None
    #: The HL7 v2 senders' allow-list (fhir_server/hl7v2/senders.py): one entry each,
    #: APP[^FACILITY]=Organization/<id>[;destination=NAME][;authority:CODE=SYSTEM]
    #: (FHIR_SERVER_HL7_SENDERS: entries separated by whitespace).
    hl7_senders: tuple[str, ...] = ()
    #: Seconds the HL7 v2 inbound worker waits after start-up before mapping (a backlog
    #: accumulates meanwhile; the crash-recovery tests use it).
    hl7_worker_delay: float = 0.0
    #: Where results (ORU^R01) go: NAME=host:port each (--hl7-destination, repeatable;
    #: FHIR_SERVER_HL7_DESTINATIONS: entries separated by whitespace). A result goes to the
    #: destination of the order's --hl7-sender entry, else to the only one configured.
    hl7_destinations: tuple[str, ...] = ()
    #: Seconds to wait for a destination's ACK; first retry delay, doubled up to the maximum.
    hl7_ack_timeout: float = 30.0
    hl7_retry_initial: float = 1.0
    hl7_retry_max: float = 60.0
    #: IANA time zone of HL7 v2 times sent without an offset (FHIR needs one), e.g.
    #: Europe/Bucharest.
    hl7_timezone: str = "UTC"
    #: The HL7 v2 mapping tables (mappings/v2-to-fhir/; None: the source tree's).
    hl7_mappings: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw)
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def with_demo_doors(self) -> Settings:
        """``--demo``: unless peers and senders are configured, the DICOM AE ``MODALITY`` and
        the HL7 v2 application ``RIS`` are allowed, for the demo hospital — so `make run` can
        be tried with storescu and an MLLP client at once (SMART is on in demo mode)."""
        from fhir_server.auth.server.demo import DEMO_HOSPITAL  # seeded there

        if not self.demo:
            return self
        return replace(
            self,
            dicom_peers=self.dicom_peers or (f"MODALITY=Organization/{DEMO_HOSPITAL}",),
            hl7_senders=self.hl7_senders or (f"RIS=Organization/{DEMO_HOSPITAL}",),
        )

    def _check_dicom_specs(self) -> None:
        from fhir_server.dicom.scu import Peer  # the --dicom-peer grammar lives with the door
        from fhir_server.imaging.gate import GatePolicy

        for spec in self.dicom_peers:
            try:
                Peer.parse(spec)
            except ValueError as exc:
                raise ValueError(f"--dicom-peer {spec!r}: {exc}") from None
        if self.dicom_gate is not None:
            try:
                GatePolicy.parse(self.dicom_gate)
            except ValueError as exc:
                raise ValueError(f"--dicom-gate {self.dicom_gate!r}: {exc}") from None

    def check(self) -> list[str]:
        """Refuse unsafe combinations; returns the warnings to log loudly."""
        if self.auth not in ("smart", "off"):
            raise ValueError("--auth must be smart (the default) or off")
        if bool(self.external_issuer) != bool(self.external_jwks_url):
            raise ValueError(
                "an external identity provider needs both FHIR_SERVER_EXTERNAL_ISSUER and "
                "FHIR_SERVER_EXTERNAL_JWKS_URL"
            )
        if self.demo and self.auth != "smart":
            raise ValueError("--demo creates demo accounts, which need --auth smart")
        if self.store not in (None, "sqlite") and not is_mongodb_url(self.store):
            shown = without_credentials(self.store)
            raise ValueError(
                "--store must be 'sqlite' (the default, in --data-dir) or a MongoDB connection "
                f"string (mongodb://host/database?replicaSet=name), not {shown!r}"
            )
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
        if self.dicom_priors not in ("auto", "manual", "off"):
            raise ValueError("--dicom-priors must be auto, manual or off")
        if self.dicom_retrieve not in ("move", "get"):
            raise ValueError("--dicom-retrieve must be move (C-MOVE) or get (C-GET)")
        if (self.dicom_tls_cert is None) != (self.dicom_tls_key is None):
            raise ValueError("--dicom-tls-cert and --dicom-tls-key go together")
        self._check_dicom_specs()
        if self.dicom_remote is not None and not _REMOTE_AE.fullmatch(self.dicom_remote):
            raise ValueError("--dicom-remote must be AE@host:port[;tls], e.g. PACS@10.0.0.5:104")
        for spec in self.hl7_destinations:
            if not _DESTINATION.fullmatch(spec):
                raise ValueError(f"--hl7-destination {spec!r}: expected NAME=host:port")
        try:
            ZoneInfo(self.hl7_timezone)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"--hl7-timezone {self.hl7_timezone!r} is not an IANA time zone"
            ) from None
        if (self.mllp_tls_cert is None) != (self.mllp_tls_key is None):
            raise ValueError("MLLP over TLS needs both --mllp-tls-cert and --mllp-tls-key")
        if is_loopback(self.host):
            return []
        if self.auth == "smart":
            if self.base_url and self.base_url.startswith("https://"):
                return []
            return [
                f"serving on {self.host}:{self.port} over plain HTTP: access tokens and "
                "passwords must only travel over TLS (1.2 or later); put a TLS-terminating "
                "proxy in front and set --base-url https://…/fhir"
            ]
        if not self.insecure:
            raise ValueError(
                f"refusing to serve without authorization on {self.host}, which is not a "
                "loopback address; bind to 127.0.0.1, or add --insecure if (and only if) the "
                "port is published on the host's loopback only (e.g. a container)"
            )
        return [
            f"INSECURE: serving FHIR without any authorization on {self.host}:{self.port}; "
            "anyone who can reach this port can read and change every resource"
        ]


def is_mongodb_url(store: str | None) -> bool:
    return store is not None and store.startswith(("mongodb://", "mongodb+srv://"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _switch(name: str, raw: str) -> bool:
    """An on/off option: a typo must not silently switch a safeguard off."""
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{PREFIX}{name.upper()} must be on or off")


def _convert(name: str, raw: str) -> Any:
    if name in ("port", "max_body_bytes", "max_bundle_entries", "dicom_port", "mllp_port"):
        return int(raw)
    if name in ("mllp_max_message_bytes",):
        return int(raw)
    if name in (
        "mllp_read_timeout", "hl7_worker_delay", "hl7_ack_timeout", "hl7_retry_initial",
        "hl7_retry_max",
    ):  # fmt: skip
        return float(raw)
    if name in (
        "mllp_tls_cert", "mllp_tls_key", "hl7_mappings", "dicom_tls_cert", "dicom_tls_key",
        "dicom_tls_ca",
    ):  # fmt: skip
        return Path(raw)
    if name in ("hl7_senders", "hl7_destinations"):
        return tuple(raw.split())
    if name == "dicom_peers":
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if name in ("insecure", "demo"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if name in ("referential_integrity", "core_invariants"):
        return _switch(name, raw)
    if name == "conformance_dirs":
        return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    if name == "data_dir":
        return Path(raw)
    return raw


def project_dir() -> Path | None:
    """The source tree the package runs from (a checkout or an editable install), which holds
    profiles/ and terminology/; None for an installed wheel (the Docker image sets the folders
    with FHIR_SERVER_CONFORMANCE_DIRS and FHIR_SERVER_VALIDATION_RULES)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "terminology").is_dir() and (root / "profiles").is_dir() else None


def default_conformance_dirs() -> tuple[Path, ...]:
    root = project_dir()
    if root is None:
        return ()
    return (root / "profiles" / "fsh-generated" / "resources", root / "terminology")


def default_validation_rules() -> Path | None:
    root = project_dir()
    path = root / "profiles" / "rulesets" / "telemedicine.json" if root is not None else None
    return path if path is not None and path.is_file() else None
