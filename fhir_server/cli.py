"""``fhir-server serve``: the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fhir_server import __version__
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
    serve.add_argument("--auth", choices=["off"], help="authorization mode (only 'off' for now)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env().with_overrides(
        host=args.host, port=args.port, data_dir=args.data_dir, auth=args.auth,
        insecure=args.insecure, base_url=args.base_url, log_level=args.log_level,
        referential_integrity=_switch(args.referential_integrity),
    )  # fmt: skip
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


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _serve(settings: Settings) -> int:
    import os

    from fhir_server.api.app import create_app
    from fhir_server.api.server import serve
    from fhir_server.bootstrap import build

    os.umask(0o077)  # health data: the database and every file the server writes are private
    application = build(settings)
    app = create_app(
        application.service,
        application,
        base_url=settings.base_url,
        max_body_bytes=settings.max_body_bytes,
    )
    print(
        f"fhir-server {__version__}: FHIR R4 at http://{settings.host}:{settings.port}/fhir "
        f"(data in {settings.data_dir.resolve()})",
        file=sys.stderr,
    )
    serve(app, settings.host, settings.port, settings.log_level)
    return 0
