"""``fhir-server migrate --from DATA_DIR --to TARGET``: copy a whole SQLite store into another
store (a MongoDB URL, or another SQLite data dir), every version of every resource, in order.

How it works:

- **Source**: the SQLite data dir, read-only, oldest version first (``history.seq``, the commit
  order: storage/sqlite/export.py; the port's ``history`` pages newest first). What the source
  holds when the migration starts is what is copied; a server may keep writing to it (run the
  migration again to copy the rest, e.g. once more after stopping it).
- **Target**: written only through the storage port: units of work of ``batch_size`` puts, each
  version with ``expected_version = version - 1``, its stored body, ``lastUpdated`` and method
  unchanged. The current version of each resource gets its search index and local references
  recomputed by the server's own indexer and reference walker (from ``bootstrap.build``), so
  search on the target behaves as on a server that stored it; older versions are only ever
  read by vread and history, so they are stored without an index (the next put replaces it).
  A unit never holds two versions of one resource (a new unit starts instead).
- **Resumable**: before copying, the target's history is read through the port. A version the
  target already holds (not above its current version of that resource) is skipped, so a run
  that was interrupted (killed, or the network lost) continues where its last committed unit
  ended, without duplicates. The target is refused, before anything is written, when it holds
  data the source does not: a resource with a higher version than the source's, a version whose
  content differs, or a resource the source does not have.
- **Outbox**: every put appends an outbox row (the port has no other way to write), but the
  migrated history already had its side effects (audit, subscriptions, messages) on the source
  server. A POST_COMMIT hook the target sees for the first time starts after the events already
  in its outbox (both backends), so hooks registered later never see them; for a hook that
  already had a cursor in the target (a server ran on it before), the migration moves the
  cursor past the migrated events at the end. Events the source's hooks had not delivered are
  not carried over: they are counted and reported.
- **Records** (storage/records.py): those that never expire (users, clients, signing keys) are
  copied after the versions, each put again as it was (same kind, key, value and indexed
  field), replacing the target's record of that key: a run again copies them again, and the
  source, which the target replaces, wins. Expiring ones (codes, tokens, replay caches) are not
  copied: they are short-lived, and a client gets new ones from the target.
- **DICOM instances**: the bytes the instance records name are copied from the source's blob
  store into the target's (GridFS, or ``blobs/`` of a SQLite target) unless already there with
  the same SHA-256 (``migrate_blobs.py``); a copy with other bytes fails the verification.
- **Verified** at the end: per resource type, the resources, the versions and a checksum of
  every version (type, id, version, method, ``lastUpdated`` to the millisecond, body bytes)
  must be equal in the source snapshot and in the target, read back through the port.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from fhir_server.bootstrap import make_store
from fhir_server.core import fhirjson
from fhir_server.core.errors import VersionConflict
from fhir_server.migrate_blobs import copy_blobs, instance_blobs, unindexed
from fhir_server.migrate_report import (
    HISTORY_PAGE,
    Inventory,
    Key,
    Summary,
    describe,
    inventory,
    report,
    version_digest,
)
from fhir_server.progress import Progress
from fhir_server.search.model import ResourceIndex
from fhir_server.storage.port import ResourceStore, ResourceVersion
from fhir_server.storage.sqlite.export import HistoryExport, NotADataDir, RecordRow
from fhir_server.validation.references import local_references

BATCH_SIZE = 500  # puts per unit of work
READ_SIZE = 2_000  # source versions read at a time
INTERACTIONS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class MigrationRefused(Exception):
    """The migration cannot run as asked (conflicting target, bad source); nothing was written
    by the refusing step. The message says what to do."""


def open_store(target: str) -> ResourceStore:
    """The store ``target`` names: a ``mongodb://``/``mongodb+srv://`` URL, else a SQLite data
    dir (created if missing; WAL with synchronous NORMAL: a killed migration loses no commit)."""
    return make_store(target, Path(target), synchronous="NORMAL")


def check_target(target: Inventory, latest: dict[Key, int], export: HistoryExport) -> None:
    """Refuse a target holding data the source does not (see the module docstring)."""
    problems: list[str] = []
    same = [(k[0], k[1], v) for k, (v, _) in target.current.items() if v <= latest.get(k, 0)]
    source = export.versions(same)
    for key, (version, digest) in target.current.items():
        name = f"{key[0]}/{key[1]}"
        if key not in latest:
            problems.append(f"{name} is in the target but not in the source")
        elif version > latest[key]:
            problems.append(
                f"{name} is at version {version} in the target but {latest[key]} in the source"
            )
        elif (found := source.get((*key, version))) is None or version_digest(found) != digest:
            problems.append(f"{name} version {version} differs between source and target")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise MigrationRefused(
            "the target holds data that conflicts with the source: "
            + "; ".join(problems[:3])
            + more
            + ". Migrate into an empty database, or into the one an earlier run of this "
            "migration from the same source filled."
        )


@dataclass(frozen=True, slots=True)
class Tools:
    """What the server computes for each stored version (from ``bootstrap.build``)."""

    index: Callable[[dict[str, Any]], ResourceIndex]
    post_commit_hooks: tuple[str, ...]
    base_url: str = ""


@dataclass(slots=True)
class Copier:
    target: ResourceStore
    tools: Tools
    latest: dict[Key, int]
    present: dict[Key, int]
    progress: Progress
    batch_size: int = BATCH_SIZE
    source: Inventory = field(default_factory=Inventory)
    skipped: int = 0
    _unit: list[ResourceVersion] = field(default_factory=list)
    _keys: set[Key] = field(default_factory=set)

    async def run(self, export: HistoryExport) -> None:
        seq = 0
        while rows := await asyncio.to_thread(export.versions_after, seq, READ_SIZE):
            seq = rows[-1][0]
            for _, version in rows:
                await self._take(version)
        await self._flush()

    async def _take(self, version: ResourceVersion) -> None:
        self.source.add(version)
        key = (version.resource_type, version.id)
        if version.version <= self.present.get(key, 0):
            self.skipped += 1
            self.progress.advance(skipped=1)
            return
        if key in self._keys or len(self._unit) >= self.batch_size:
            await self._flush()
        self._unit.append(version)
        self._keys.add(key)

    async def _flush(self) -> None:
        if not self._unit:
            return
        try:
            async with self.target.unit_of_work() as uow:
                for version in self._unit:
                    index, references = self._derived(version)
                    uow.put(
                        version,
                        expected_version=version.version - 1,
                        interaction=INTERACTIONS.get(version.method, "update"),
                        index=index,
                        references=references,
                    )
        except VersionConflict as exc:
            raise MigrationRefused(
                f"the target changed during the migration ({exc}); is a server writing to it? "
                "Stop it and run the migration again"
            ) from None
        self.progress.advance(copied=len(self._unit))
        self._unit, self._keys = [], set()

    def _derived(self, version: ResourceVersion) -> tuple[ResourceIndex | None, list[Any]]:
        key = (version.resource_type, version.id)
        if version.body is None or version.version != self.latest[key]:
            return None, []
        resource = fhirjson.loads(version.body)
        found = local_references(resource, self.tools.base_url, body=version.body)
        return self.tools.index(resource), found


async def settle_outbox(target: ResourceStore, hooks: Iterable[str]) -> None:
    """Move each hook's cursor past the events in the target's outbox (a hook seen for the
    first time starts there anyway), so no POST_COMMIT side effect runs for migrated history."""
    from datetime import UTC, datetime

    for hook in hooks:
        while events := await target.pending_events(hook, HISTORY_PAGE, datetime.now(UTC)):
            for retry in (e for e in events if e.attempts > 0):
                await target.mark_handled(hook, retry.seq)
            await target.mark_handled(hook, max(e.seq for e in events))


def server_tools(source_dir: Path, base_url: str = "") -> Tools:
    """The server's indexer and POST_COMMIT hook names, from the composition root itself (its
    store is built but never opened)."""
    from fhir_server.bootstrap import build
    from fhir_server.settings import Settings

    application = build(Settings(data_dir=source_dir))
    hooks = tuple(application.hooks.post_commit)
    return Tools(application.service.indexer.index, hooks, base_url)


async def migrate(
    source_dir: Path,
    target: str,
    *,
    tools: Tools,
    batch_size: int = BATCH_SIZE,
    stream: TextIO = sys.stderr,
) -> Summary:
    """Copy, resume or refuse, settle the outbox, then read the target back (module docstring)."""
    export = await asyncio.to_thread(_open_source, source_dir, target, batch_size)
    try:
        pending = await unindexed(source_dir)
    except BaseException:
        export.close()
        raise
    if pending:
        export.close()
        raise MigrationRefused(
            f"{pending} DICOM instance(s) of {source_dir} lost their record in a power failure "
            "and are not indexed again yet: start `fhir-server serve` on it once (it indexes "
            "them at start), stop it, then migrate"
        )
    store = open_store(target)
    try:
        try:
            await store.open()
        except Exception as exc:
            raise MigrationRefused(f"cannot open the target {describe(target)}: {exc}") from None
        summary = await _copy_and_verify(export, store, tools, batch_size, stream)
        blobs = await copy_blobs(source_dir, target, store, summary.blob_keys)
        return replace(summary, blobs=blobs)
    finally:
        await store.close()
        export.close()


def _open_source(source_dir: Path, target: str, batch_size: int) -> HistoryExport:
    if batch_size < 1:
        raise MigrationRefused("--batch-size must be at least 1")
    if not target.startswith("mongodb") and Path(target).resolve() == source_dir.resolve():
        raise MigrationRefused("--from and --to name the same data dir")
    try:
        return HistoryExport(source_dir)
    except NotADataDir as exc:
        raise MigrationRefused(str(exc)) from None


async def _copy_and_verify(
    export: HistoryExport, store: ResourceStore, tools: Tools, batch_size: int, stream: TextIO
) -> Summary:
    started = time.monotonic()
    latest = await asyncio.to_thread(export.latest_versions)
    total = await asyncio.to_thread(export.total)
    before = await inventory(store)
    await asyncio.to_thread(check_target, before, latest, export)
    present = {key: version for key, (version, _) in before.current.items()}
    progress = Progress(total, stream)
    copier = Copier(store, tools, latest, present, progress, batch_size)
    await copier.run(export)
    progress.finish()
    await settle_outbox(store, tools.post_commit_hooks)
    rows = await asyncio.to_thread(export.lasting_records)
    records = await copy_records(rows, store)
    after = await inventory(store)
    undelivered = await asyncio.to_thread(export.undelivered_events)
    seconds = time.monotonic() - started
    copied, skipped = progress.copied, copier.skipped
    return Summary(
        copier.source, after, copied, skipped, seconds, undelivered, records, instance_blobs(rows)
    )


async def copy_records(rows: list[RecordRow], target: ResourceStore) -> int:
    """Put the source's lasting records (``rows``) into the target (module docstring); how
    many."""
    for kind, key, value, indexed in rows:
        await target.records.put(kind, key, value, index=indexed)
    return len(rows)


def main(source: Path, target: str, *, batch_size: int = BATCH_SIZE, base_url: str = "") -> int:
    """The ``fhir-server migrate`` command: 0 copied and verified, 1 verification failed,
    2 refused (nothing more written)."""
    import os

    os.umask(0o077)  # health data: a SQLite target is private, as the server's own files
    try:
        tools = server_tools(source, base_url)
        summary = asyncio.run(migrate(source, target, tools=tools, batch_size=batch_size))
    except MigrationRefused as exc:
        print(f"fhir-server migrate: {exc}", file=sys.stderr)
        return 2
    print(report(summary, source, target))
    return 1 if summary.mismatches() else 0
