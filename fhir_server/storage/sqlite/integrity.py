"""Referential integrity in SQLite: the ``ref_link`` rows of a resource and the checks.

Rows are written for every live put, whatever the policy, and replaced with each new version
(a tombstone removes them), so ``ref_link`` always holds the outgoing local references of the
current versions. The checks run inside the writer's ``BEGIN IMMEDIATE`` transaction, which
serialises them with every other write (in this process and others): a deletion and a write
referring to the deleted resource cannot both succeed. See the port's docstring for the rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from fhir_server.core import fhirjson
from fhir_server.storage import integrity as rules
from fhir_server.storage.port import PendingPut
from fhir_server.validation.references import LocalReference, local_references


def insert_references(
    conn: sqlite3.Connection, rid: int, references: Iterable[LocalReference]
) -> None:
    conn.executemany(
        "INSERT INTO ref_link (rid, path, target_type, target_id, target_version) "
        "VALUES (?, ?, ?, ?, ?)",
        [(rid, r.path, r.target_type, r.target_id, r.target_version) for r in references],
    )


def delete_references(conn: sqlite3.Connection, rid: int) -> None:
    conn.execute("DELETE FROM ref_link WHERE rid = ?", (rid,))


def references_of_body(body: bytes | None) -> list[LocalReference]:
    """The relative local references of a stored body (migrations: no base URL is known)."""
    if body is None:
        return []
    return local_references(fhirjson.loads(body), body=body)


# --- checks ---------------------------------------------------------------------------------


def check_put(conn: sqlite3.Connection, put: PendingPut, own_rid: int | None) -> None:
    """A put alone, before it writes anything (``own_rid``: the resource's rid if it exists)."""
    v = put.version
    if v.deleted:
        check_unreferenced(conn, v.resource_type, v.id, own_rid)
    else:
        check_targets(conn, [put])


def check_unit(conn: sqlite3.Connection, puts: Sequence[PendingPut]) -> None:
    """A unit of several puts, after all of them are applied: its final state is checked."""
    last = rules.final_puts(puts)
    check_targets(conn, list(last.values()))
    for (resource_type, id), put in last.items():
        if put.version.deleted:
            check_unreferenced(conn, resource_type, id, None)


def check_targets(conn: sqlite3.Connection, puts: Sequence[PendingPut]) -> None:
    """Every local reference of the live ``puts`` names a current resource that is not deleted
    (a versioned one: a stored version that is not a deletion); else DanglingReference."""
    found: list[rules.Dangling] = []
    for put, ref in rules.checked_references(puts):
        state = _target_state(conn, ref)
        if state is not None:
            found.append(rules.Dangling(put, ref, state))
    rules.raise_dangling(found)


def _target_state(conn: sqlite3.Connection, ref: LocalReference) -> rules.TargetState | None:
    if ref.target_version is None:
        row = conn.execute(
            "SELECT deleted FROM resource WHERE type = ? AND id = ?",
            (ref.target_type, ref.target_id),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT body IS NULL FROM history WHERE type = ? AND id = ? AND version = ?",
            (ref.target_type, ref.target_id, ref.target_version),
        ).fetchone()
    if row is None:
        return "missing"
    return "deleted" if row[0] else None


def check_unreferenced(
    conn: sqlite3.Connection, resource_type: str, id: str, own_rid: int | None
) -> None:
    """No current resource but the deleted one refers to it by an unversioned reference; else
    DeleteConflict listing the first referrers."""
    where = (
        "FROM ref_link l JOIN resource r ON r.rid = l.rid WHERE l.target_type = ? "
        "AND l.target_id = ? AND l.target_version IS NULL AND l.rid IS NOT ?"
    )
    params = (resource_type, id, own_rid)
    rows = conn.execute(
        f"SELECT r.type, r.id, l.path {where} ORDER BY l.rid, l.path LIMIT ?",
        (*params, rules.MAX_LISTED_REFERRERS + 1),
    ).fetchall()
    total = len(rows)
    if total > rules.MAX_LISTED_REFERRERS:
        total = int(conn.execute(f"SELECT count(*) {where}", params).fetchone()[0])
    listed = [(str(t), str(i), str(p)) for t, i, p in rows]
    rules.raise_delete_conflict(resource_type, id, listed, total)
