"""One piece of work inside a writer's open transaction, undone alone if it fails: shared by
the resources' group commit (group_commit.py) and the job group (job_group.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def apply_undoable(
    conn: sqlite3.Connection, apply: Callable[[], object], *, guarded: bool
) -> Exception | None:
    """Run ``apply()`` in ``conn``'s open transaction; its exception, or None.

    With ``guarded`` it runs inside a ``SAVEPOINT``, rolled back if it raises. Without, what
    it wrote before raising stays (the caller decides: group_commit.py replays the group).
    If SQLite itself ended the transaction (an I/O error, a full disk), the exception is
    raised instead: nothing of the group is left to commit.
    """
    if guarded:
        conn.execute("SAVEPOINT work")
    try:
        apply()
    except Exception as exc:
        if not conn.in_transaction:
            raise
        if guarded:
            conn.execute("ROLLBACK TO work")
            conn.execute("RELEASE work")
        return exc
    if guarded:
        conn.execute("RELEASE work")
    return None
