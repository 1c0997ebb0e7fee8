"""Outbox queries of the SQLite backend: per-hook cursor plus a retry table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fhir_server.storage.port import OutboxEvent
from fhir_server.storage.sqlite.rows import event_from_row
from fhir_server.storage.sqlite.schema import relaxed_sync

_EVENT = "o.seq, o.type, o.id, o.version, o.interaction, o.occurred"


def ensure_cursor(conn: sqlite3.Connection, hook: str) -> None:
    """A hook seen for the first time starts after the events already in the outbox."""
    conn.execute(
        "INSERT OR IGNORE INTO outbox_cursor (hook, last_seq) "
        "SELECT ?, coalesce(max(seq), 0) FROM outbox",
        (hook,),
    )


def pending(conn: sqlite3.Connection, hook: str, limit: int, now: str) -> list[OutboxEvent]:
    retries = conn.execute(
        f"SELECT {_EVENT}, r.attempts FROM outbox_retry r JOIN outbox o ON o.seq = r.seq "
        "WHERE r.hook = ? AND r.retry_at <= ? ORDER BY r.seq LIMIT ?",
        (hook, now, limit),
    ).fetchall()
    fresh = conn.execute(
        f"SELECT {_EVENT}, 0 FROM outbox o WHERE o.seq > "
        "(SELECT last_seq FROM outbox_cursor WHERE hook = ?) ORDER BY o.seq LIMIT ?",
        (hook, limit),
    ).fetchall()
    return [event_from_row(row) for row in (*retries, *fresh)]


def _advance(conn: sqlite3.Connection, hook: str, seq: int) -> None:
    conn.execute("UPDATE outbox_cursor SET last_seq = max(last_seq, ?) WHERE hook = ?", (seq, hook))


def handled(conn: sqlite3.Connection, hook: str, seqs: Sequence[int]) -> None:
    """One transaction for a batch the relay delivered, committed without an fsync of its own
    (``synchronous`` at most NORMAL for it): delivery is at least once, so a mark lost with
    the machine's power only offers those events again, as a crash before the mark always
    could; an application crash loses nothing in WAL mode, and the next durable commit syncs
    the mark too. Each mark used to wait for its own fsync on the single writer thread, ahead
    of the writes queued behind it (a transaction of 250 resources made nine of them)."""
    with relaxed_sync(conn):
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "DELETE FROM outbox_retry WHERE hook = ? AND seq = ?",
                [(hook, seq) for seq in seqs],
            )
            _advance(conn, hook, max(seqs))
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def failed(conn: sqlite3.Connection, hook: str, seq: int, retry_at: str, error: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO outbox_retry (hook, seq, attempts, retry_at, last_error) "
        "VALUES (?, ?, 1, ?, ?) ON CONFLICT (hook, seq) DO UPDATE SET "
        "attempts = attempts + 1, retry_at = excluded.retry_at, last_error = excluded.last_error",
        (hook, seq, retry_at, error[:500]),
    )
    _advance(conn, hook, seq)
    conn.execute("COMMIT")
