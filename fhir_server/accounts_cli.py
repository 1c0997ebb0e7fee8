"""``fhir-server users add``, ``fhir-server clients add`` and ``fhir-server token``: register
the SMART authorization server's users and clients in the store (the same ``--data-dir`` /
``--store`` as ``serve``), and get an access token as a backend services client."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from fhir_server.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="users of the SMART authorization server")
    user_commands = users.add_subparsers(dest="action", required=True)
    add = user_commands.add_parser("add", help="register a user (the password is hashed)")
    add.add_argument("username")
    _store_options(add)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--password", help="the password (prefer --password-stdin)")
    add.add_argument("--name", help="display name")
    add.add_argument("--fhir-user", help="the user's FHIR resource, e.g. Practitioner/123")
    add.add_argument("--replace", action="store_true", help="replace an existing user")

    clients = commands.add_parser("clients", help="SMART apps and backend services")
    client_commands = clients.add_subparsers(dest="action", required=True)
    cadd = client_commands.add_parser("add", help="register a client")
    cadd.add_argument("client_id")
    cadd.add_argument("--type", required=True, choices=["public", "confidential", "backend"])
    _store_options(cadd)
    cadd.add_argument("--secret-stdin", action="store_true", help="read the secret from stdin")
    cadd.add_argument("--secret", help="the client secret (confidential symmetric clients)")
    cadd.add_argument("--generate-secret", action="store_true", help="make and print a secret")
    cadd.add_argument("--redirect-uri", action="append", default=[], help="repeatable")
    cadd.add_argument("--launch-uri", help="the app's launch URL (EHR launch)")
    cadd.add_argument("--scope", help="the scopes the client may be granted (space-separated)")
    cadd.add_argument("--jwks-file", type=Path, help="public JWKS (private_key_jwt)")
    cadd.add_argument("--jwks-url", help="public JWKS URL (private_key_jwt)")
    cadd.add_argument("--name", help="the app's name, shown on the consent page")
    cadd.add_argument("--replace", action="store_true", help="replace an existing client")

    token = commands.add_parser(
        "token", help="get an access token as a backend services client (private_key_jwt)"
    )
    token.add_argument("--client", required=True, help="the backend client id")
    token.add_argument("--key", required=True, type=Path, help="the client's private JWK file")
    token.add_argument("--fhir-base", required=True, help="e.g. http://127.0.0.1:8080/fhir")
    token.add_argument("--scope", default="system/*.rs", help="scopes to ask for")


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="as for serve (default ./var)")
    parser.add_argument("--store", help="as for serve: sqlite or a MongoDB URL")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "token":
            return _token(args)
        return asyncio.run(_register(args))
    except ValueError as exc:
        print(f"fhir-server: {exc}", file=sys.stderr)
        return 2


async def _register(args: argparse.Namespace) -> int:
    from fhir_server.auth.server.accounts import Accounts, new_client, new_user
    from fhir_server.bootstrap import make_store

    settings = Settings.from_env().with_overrides(data_dir=args.data_dir, store=args.store)
    if args.command == "users":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        if not password:
            raise ValueError("give the password with --password-stdin (or --password)")
        record: Any = new_user(args.username, password, name=args.name, fhir_user=args.fhir_user)
    else:
        secret = sys.stdin.readline().rstrip("\n") if args.secret_stdin else args.secret
        if args.generate_secret:
            secret = secrets.token_urlsafe(32)
        jwks = json.loads(args.jwks_file.read_text()) if args.jwks_file else None
        record = new_client(
            args.client_id, args.type, name=args.name, secret=secret,
            redirect_uris=tuple(args.redirect_uri), launch_uri=args.launch_uri,
            scope=args.scope, jwks=jwks, jwks_url=args.jwks_url,
        )  # fmt: skip
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = make_store(settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous)
    await store.open()
    try:
        accounts = Accounts(store.records)
        if args.command == "users":
            await accounts.add_user(record, replace=args.replace)
            print(f"user {record.username} registered", file=sys.stderr)
        else:
            await accounts.add_client(record, replace=args.replace)
            print(f"client {record.client_id} registered ({record.auth_method})", file=sys.stderr)
            if args.generate_secret:
                print(secret)
    finally:
        await store.close()
    return 0


def _token(args: argparse.Namespace) -> int:
    import httpx

    from fhir_server.auth.assertion import ASSERTION_TYPE, client_assertion

    config = httpx.get(args.fhir_base.rstrip("/") + "/.well-known/smart-configuration", timeout=10)
    config.raise_for_status()
    token_url = config.json()["token_endpoint"]
    assertion = client_assertion(json.loads(args.key.read_text()), args.client, token_url)
    response = httpx.post(token_url, timeout=10, data={
        "grant_type": "client_credentials", "scope": args.scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    })  # fmt: skip
    if response.status_code != 200:
        print(f"fhir-server: the token endpoint answered {response.status_code}: {response.text}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(response.json()["access_token"])
    return 0
