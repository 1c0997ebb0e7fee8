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
from fhir_server.core.errors import DanglingReference, DeleteConflict, Issue
from fhir_server.storage.port import PendingPut
from fhir_server.validation.references import LocalReference, local_references

#: How many referrers a refused deletion lists.
MAX_LISTED_REFERRERS = 20


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
    last: dict[tuple[str, str], PendingPut] = {}
    for put in puts:
        last[put.version.resource_type, put.version.id] = put
    check_targets(conn, [put for put in last.values() if not put.version.deleted])
    for (resource_type, id), put in last.items():
        if put.version.deleted:
            check_unreferenced(conn, resource_type, id, None)


def check_targets(conn: sqlite3.Connection, puts: Sequence[PendingPut]) -> None:
    """Every local reference of ``puts`` names a current resource that is not deleted (a
    versioned one: a stored version that is not a deletion); else DanglingReference listing
    each one that does not, by element path (never the id: it is a value of the resource)."""
    issues: list[Issue] = []
    sources: list[tuple[str, str]] = []
    for put in puts:
        for ref in put.references:
            if _is_itself(ref, put):
                continue
            problem = _target_problem(conn, ref)
            if problem is not None:
                issues.append(Issue("error", "not-found", f"{ref.path} {problem}", (ref.path,)))
                sources.append((put.version.resource_type, put.version.id))
    if issues:
        count = f"{len(issues)} reference{'s' if len(issues) > 1 else ''}"
        raise DanglingReference(
            f"{count} of the resource cannot be resolved on this server "
            f"(referential integrity); first: {issues[0].diagnostics}",
            sources=sources,
            issues=issues,
        )


def _is_itself(ref: LocalReference, put: PendingPut) -> bool:
    """A reference to the resource of the put, as this put stores it."""
    v = put.version
    return (
        ref.target_type == v.resource_type
        and ref.target_id == v.id
        and ref.target_version in (None, v.version)
    )


def _target_problem(conn: sqlite3.Connection, ref: LocalReference) -> str | None:
    kind = ref.target_type
    if ref.target_version is None:
        row = conn.execute(
            "SELECT deleted FROM resource WHERE type = ? AND id = ?", (kind, ref.target_id)
        ).fetchone()
        if row is None:
            return f"refers to a {kind} that does not exist on this server"
        return f"refers to a {kind} that was deleted" if row[0] else None
    row = conn.execute(
        "SELECT body IS NULL FROM history WHERE type = ? AND id = ? AND version = ?",
        (kind, ref.target_id, ref.target_version),
    ).fetchone()
    if row is None:
        return f"refers to a version of a {kind} that does not exist on this server"
    return f"refers to a version of a {kind} that is a deletion" if row[0] else None


def check_unreferenced(
    conn: sqlite3.Connection, resource_type: str, id: str, own_rid: int | None
) -> None:
    """No current resource but the deleted one refers to it by an unversioned reference; else
    DeleteConflict listing the first referrers (type/id and element path: ids are not personal
    data, and no value of the referring resources is quoted)."""
    where = (
        "FROM ref_link l JOIN resource r ON r.rid = l.rid WHERE l.target_type = ? "
        "AND l.target_id = ? AND l.target_version IS NULL AND l.rid IS NOT ?"
    )
    params = (resource_type, id, own_rid)
    rows = conn.execute(
        f"SELECT r.type, r.id, l.path {where} ORDER BY l.rid, l.path LIMIT ?",
        (*params, MAX_LISTED_REFERRERS + 1),
    ).fetchall()
    if not rows:
        return
    total = len(rows)
    if total > MAX_LISTED_REFERRERS:
        total = int(conn.execute(f"SELECT count(*) {where}", params).fetchone()[0])
    listed = [(str(t), str(i), str(p)) for t, i, p in rows[:MAX_LISTED_REFERRERS]]
    shown = "; ".join(f"{t}/{i} at {p}" for t, i, p in listed)
    more = f"; and {total - len(listed)} more" if total > len(listed) else ""
    summary = (
        f"{resource_type}/{id} cannot be deleted: {total} reference{'s' if total > 1 else ''} "
        f"from other resources point{'s' if total == 1 else ''} to it (referential integrity): "
        f"{shown}{more}"
    )
    issues = [Issue("error", "conflict", summary)] + [
        Issue("information", "conflict", f"{t}/{i} refers to {resource_type}/{id} at {p}")
        for t, i, p in listed
    ]
    target = (resource_type, id)
    raise DeleteConflict(summary, target=target, referrers=listed, total=total, issues=issues)
