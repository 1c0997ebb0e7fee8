"""``fhir-server serve``: the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fhir_server import __version__, accounts_cli
from fhir_server.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-server", description="FHIR R4 server")
    parser.add_argument("--version", action="version", version=f"fhir-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve FHIR R4 at http://HOST:PORT/fhir",
        description="Every option can also be set as FHIR_SERVER_<OPTION> (e.g. FHIR_SERVER_PORT).",
    )  # fmt: skip
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="where the data lives (default ./var)")
    serve.add_argument(
        "--store", metavar="sqlite|mongodb://…",
        help="where resources live: 'sqlite' (default, in --data-dir) or a MongoDB replica set "
        "or mongos URL, e.g. mongodb://db1,db2/fhir?replicaSet=rs0",
    )  # fmt: skip
    serve.add_argument(
        "--auth", choices=["smart", "off"],
        help="smart (default): SMART on FHIR authorization server, bearer tokens required on "
        "the FHIR API; off: no authorization (loopback development only)",
    )  # fmt: skip
    serve.add_argument(
        "--demo", action="store_true", default=None,
        help="on first start with an empty store, create a demo user, demo clients and demo "
        "patients, and print how to get a token (make run uses it; never in production)",
    )  # fmt: skip
    serve.add_argument("--external-issuer", help="accept tokens of this identity provider too")
    serve.add_argument("--external-jwks-url", help="the external identity provider's JWKS URL")
    serve.add_argument(
        "--insecure", action="store_true", default=None,
        help="allow --auth off on a non-loopback address (only behind a host-loopback port)",
    )  # fmt: skip
    serve.add_argument("--base-url", help="public FHIR base URL, if behind a proxy")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--referential-integrity", choices=["on", "off"],
        help="local references must point to existing resources, and referenced resources "
        "cannot be deleted (default on)",
    )  # fmt: skip
    serve.add_argument(
        "--core-invariants", choices=["on", "off"],
        help="check the R4 core invariants (FHIRPath constraints) on every write (default off: "
        "only resources that claim or must meet a profile are checked completely)",
    )  # fmt: skip
    serve.add_argument(
        "--validation-rules", metavar="FILE|off",
        help="which resources must meet which profiles (default: the shipped telemedicine "
        "rule set, profiles/rulesets/telemedicine.json)",
    )  # fmt: skip
    serve.add_argument(
        "--dicom-port", type=int,
        help="DICOM (DIMSE) port of the node: C-ECHO, C-STORE, C-FIND, worklist, storage "
        "commitment (default 11112; 0 disables the DICOM door)",
    )  # fmt: skip
    serve.add_argument("--dicom-aet", help="AE title of the DICOM node (default FHIRSERVER)")
    serve.add_argument(
        "--dicom-remote", metavar="AE@HOST:PORT",
        help="the remote PACS holding prior studies (C-FIND, then C-MOVE or C-GET)",
    )  # fmt: skip
    serve.add_argument(
        "--dicom-priors", choices=["auto", "manual", "off"],
        help="fetch priors from --dicom-remote when a patient's new study arrives (auto, the "
        "default), only on ImagingStudy/$fetch-priors (manual), or never (off)",
    )  # fmt: skip
    serve.add_argument(
        "--dicom-retrieve", choices=["move", "get"],
        help="retrieve priors by C-MOVE to this node (default; the remote must know our AE) "
        "or by C-GET on the same association",
    )  # fmt: skip
    serve.add_argument("--dicom-host", help="address of the DICOM node (default: --host)")
    serve.add_argument(
        "--dicom-peer", action="append", dest="dicom_peers",
        metavar="AE=Organization/ID[@HOST:PORT]",
        help="a calling AE allowed with --auth smart and the organisation it sends for "
        "(repeatable); @HOST:PORT lets C-MOVE and storage commitment reach it",
    )  # fmt: skip
    serve.add_argument("--dicom-tls-cert", type=Path, help="PEM certificate (chain): DICOM TLS")
    serve.add_argument("--dicom-tls-key", type=Path, help="PEM private key of --dicom-tls-cert")
    serve.add_argument(
        "--dicom-tls-ca", type=Path,
        help="PEM CA certificates that peers reached over TLS (AE@host:port;tls) must chain to "
        "(default: the system's CAs)",
    )  # fmt: skip
    serve.add_argument(
        "--dicom-gate", metavar="CHECK=ACTION,...",
        help="RO-14 image gate policy over the defaults, e.g. secondary-capture=review",
    )  # fmt: skip
    serve.add_argument(
        "--mllp-port", type=int,
        help="HL7 v2 over MLLP port (default 2575; 0 disables the HL7 v2 door)",
    )  # fmt: skip
    serve.add_argument("--mllp-host", help="address of the MLLP listener (default: --host)")
    serve.add_argument(
        "--mllp-read-timeout", type=float, metavar="SECONDS",
        help="close an MLLP connection idle (or stalled mid-frame) this long (default 300)",
    )  # fmt: skip
    serve.add_argument(
        "--mllp-max-message-bytes", type=int, metavar="BYTES",
        help="largest HL7 v2 message accepted; larger frames get AR (default 4194304)",
    )  # fmt: skip
    serve.add_argument("--mllp-tls-cert", type=Path, help="PEM certificate (chain): MLLP over TLS")
    serve.add_argument("--mllp-tls-key", type=Path, help="PEM private key of --mllp-tls-cert")
    serve.add_argument(
        "--hl7-sender", action="append", dest="hl7_senders",
        metavar="APP[^FACILITY]=Organization/ID[;destination=NAME][;authority:CODE=SYSTEM]",
        help="an HL7 v2 sender allowed to send (repeatable; with --auth off anyone may send)",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-worker-delay", type=float, metavar="SECONDS",
        help="wait this long after start-up before mapping received HL7 v2 messages (default 0)",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-destination", action="append", dest="hl7_destinations", metavar="NAME=HOST:PORT",
        help="an MLLP peer that receives results (ORU^R01), repeatable; a --hl7-sender entry's "
        ";destination=NAME picks one, else the only one is used",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-ack-timeout", type=float, metavar="SECONDS",
        help="wait this long for a destination's ACK before retrying (default 30)",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-retry-initial", type=float, metavar="SECONDS",
        help="first retry delay for an unreachable destination, doubled each time (default 1)",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-retry-max", type=float, metavar="SECONDS", help="longest retry delay (default 60)"
    )
    serve.add_argument(
        "--hl7-timezone", metavar="ZONE",
        help="IANA time zone of HL7 v2 times sent without an offset (default UTC)",
    )  # fmt: skip
    serve.add_argument(
        "--hl7-mappings", type=Path, metavar="DIR",
        help="the HL7 v2 mapping tables (default: mappings/v2-to-fhir of the source tree)",
    )  # fmt: skip
    _add_migrate(commands)
    accounts_cli.add_commands(commands)
    return parser


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate", help="copy a SQLite data dir, every version, into MongoDB or another data dir",
        description="Copies every version of every resource in order, recomputing search "
        "indexes; run it again after an interruption to resume; verifies the copy at the end.",
    )  # fmt: skip
    migrate.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="DATA_DIR",
        help="the SQLite data dir to copy (as given to serve --data-dir); only read",
    )  # fmt: skip
    migrate.add_argument(
        "--to", dest="target", required=True, metavar="URL|DIR",
        help="a MongoDB URL (mongodb://host/db?replicaSet=rs0) or another data dir",
    )  # fmt: skip
    migrate.add_argument("--batch-size", type=int, default=500, help="puts per unit of work")
    migrate.add_argument(
        "--base-url", help="the server's public FHIR base URL (FHIR_SERVER_BASE_URL), if set: "
        "absolute references under it are local references",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        return _migrate(args)
    if args.command in ("users", "clients", "token"):
        return accounts_cli.run(args)
    settings = Settings.from_env().with_overrides(
        host=args.host, port=args.port, data_dir=args.data_dir, store=args.store, auth=args.auth,
        insecure=args.insecure, base_url=args.base_url, log_level=args.log_level,
        demo=args.demo, external_issuer=args.external_issuer,
        external_jwks_url=args.external_jwks_url,
        referential_integrity=_switch(args.referential_integrity),
        core_invariants=_switch(args.core_invariants), validation_rules=args.validation_rules,
        dicom_port=args.dicom_port, dicom_aet=args.dicom_aet, mllp_port=args.mllp_port,
        dicom_remote=args.dicom_remote, dicom_priors=args.dicom_priors,
        dicom_retrieve=args.dicom_retrieve, dicom_host=args.dicom_host,
        dicom_peers=tuple(args.dicom_peers) if args.dicom_peers else None,
        dicom_tls_cert=args.dicom_tls_cert, dicom_tls_key=args.dicom_tls_key,
        dicom_tls_ca=args.dicom_tls_ca, dicom_gate=args.dicom_gate,
        mllp_host=args.mllp_host, mllp_read_timeout=args.mllp_read_timeout,
        mllp_max_message_bytes=args.mllp_max_message_bytes, mllp_tls_cert=args.mllp_tls_cert,
        mllp_tls_key=args.mllp_tls_key, hl7_worker_delay=args.hl7_worker_delay,
        hl7_senders=tuple(args.hl7_senders) if args.hl7_senders else None,
        hl7_destinations=tuple(args.hl7_destinations) if args.hl7_destinations else None,
        hl7_ack_timeout=args.hl7_ack_timeout, hl7_retry_initial=args.hl7_retry_initial,
        hl7_retry_max=args.hl7_retry_max, hl7_timezone=args.hl7_timezone,
        hl7_mappings=args.hl7_mappings,
    ).with_demo_doors()  # fmt: skip
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        warnings = settings.check()
    except ValueError as exc:
        print(f"fhir-server: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        logging.getLogger("fhir_server").warning("%s", warning)
        print(f"WARNING: {warning}", file=sys.stderr)
    return _serve(settings)


def _migrate(args: argparse.Namespace) -> int:
    from fhir_server.migrate import main as migrate

    base_url = args.base_url or Settings.from_env().base_url or ""
    return migrate(args.source, args.target, batch_size=args.batch_size, base_url=base_url)


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _serve(settings: Settings) -> int:
    import os

    from fhir_server.api.server import serve
    from fhir_server.bootstrap import build, describe_store, make_app

    os.umask(0o077)  # health data: the database and every file the server writes are private
    application = build(settings)
    application.settle_heap = True  # a long-running process: see fhir_server.core.heap
    app = make_app(application)
    auth = "SMART authorization" if settings.auth == "smart" else "NO authorization (--auth off)"
    print(
        f"fhir-server {__version__}: FHIR R4 at http://{settings.host}:{settings.port}/fhir "
        f"with {auth} (data: {describe_store(settings)})",
        file=sys.stderr,
    )
    serve(app, settings.host, settings.port, settings.log_level)
    return 0
