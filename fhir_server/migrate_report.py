"""What ``fhir-server migrate`` (migrate.py) compares and reports: the inventory of a store
(every version, tallied per resource type with a checksum of each version's type, id, version,
method, ``lastUpdated`` to the millisecond and body bytes), the run's summary, and the report
printed at the end."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from fhir_server.core.urls import without_credentials
from fhir_server.migrate_blobs import BlobCopy
from fhir_server.storage.port import HistoryQuery, ResourceStore, ResourceVersion

HISTORY_PAGE = 1_000  # target versions per history page (inventory, verification)
_MASK = (1 << 64) - 1

Key = tuple[str, str]


def describe(target: str) -> str:
    """``target`` for people: a URL without its password."""
    return without_credentials(target)


def version_digest(version: ResourceVersion) -> int:
    """A 64-bit checksum of one version (type, id, version, method, lastUpdated to the
    millisecond, body bytes)."""
    moment = version.last_updated.replace(microsecond=version.last_updated.microsecond // 1000)
    h = hashlib.blake2b(digest_size=8)
    for part in (version.resource_type, version.id, str(version.version), version.method):
        h.update(part.encode())
        h.update(b"\0")
    h.update(moment.isoformat().encode())
    h.update(b"\1" if version.body is None else b"\0" + version.body)
    return int.from_bytes(h.digest(), "big")


@dataclass(slots=True)
class TypeTally:
    resources: int = 0
    versions: int = 0
    checksum: int = 0


@dataclass(slots=True)
class Inventory:
    """What a store holds: each resource's current (version, digest), tallies per type."""

    current: dict[Key, tuple[int, int]] = field(default_factory=dict)
    types: dict[str, TypeTally] = field(default_factory=dict)

    def add(self, version: ResourceVersion) -> None:
        key = (version.resource_type, version.id)
        tally = self.types.setdefault(version.resource_type, TypeTally())
        known = self.current.get(key)
        if known is None:
            tally.resources += 1
        tally.versions += 1
        digest = version_digest(version)
        tally.checksum = (tally.checksum + digest) & _MASK
        if known is None or version.version > known[0]:
            self.current[key] = (version.version, digest)


async def inventory(store: ResourceStore) -> Inventory:
    """Every version ``store`` holds, read through the port's system history."""
    found = Inventory()
    cursor: str | None = None
    while True:
        page = await store.history(HistoryQuery(count=HISTORY_PAGE, cursor=cursor))
        for version in page.entries:
            found.add(version)
        if page.next_cursor is None or not page.entries:
            return found
        cursor = page.next_cursor


@dataclass(frozen=True, slots=True)
class Summary:
    source: Inventory  # the snapshot copied
    target: Inventory  # read back from the target afterwards
    copied: int
    skipped: int
    seconds: float
    undelivered: int  # outbox events of the source its hooks had not handled
    records: int = 0  # lasting records copied (put again)
    blob_keys: list[str] = field(default_factory=list)  # those the instance records name
    blobs: BlobCopy = field(default_factory=BlobCopy)  # their copy (migrate_blobs.py)

    def mismatches(self) -> list[str]:
        found = [f"DICOM instance {key}: the target's bytes differ" for key in self.blobs.differing]
        for name in sorted(self.source.types.keys() | self.target.types.keys()):
            mine = self.source.types.get(name, TypeTally())
            theirs = self.target.types.get(name, TypeTally())
            if mine != theirs:
                found.append(
                    f"{name}: source {mine.resources:,} resources, {mine.versions:,} versions; "
                    f"target {theirs.resources:,} resources, {theirs.versions:,} versions"
                    + ("" if mine.checksum == theirs.checksum else ", contents differ")
                )
        return found


def report(summary: Summary, source: Path, target: str) -> str:
    rate = summary.copied / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        f"fhir-server migrate: {source} -> {describe(target)}",
        f"  copied {summary.copied:,} versions ({summary.skipped:,} already in the target) "
        f"in {summary.seconds:.1f} s ({rate:,.0f}/s), and {summary.records:,} records",
        f"  copied the bytes of {summary.blobs.copied:,} DICOM instances "
        f"({summary.blobs.present:,} already in the target)",
        f"  {'type':<32} {'resources':>10} {'versions':>10}  in target",
    ]
    for name in sorted(summary.source.types.keys() | summary.target.types.keys()):
        mine = summary.source.types.get(name, TypeTally())
        same = mine == summary.target.types.get(name, TypeTally())
        lines.append(
            f"  {name:<32} {mine.resources:>10,} {mine.versions:>10,}  "
            + ("equal" if same else "DIFFERENT")
        )
    mismatches = summary.mismatches()
    if mismatches:
        lines.append("VERIFICATION FAILED: " + "; ".join(mismatches))
    else:
        resources = sum(t.resources for t in summary.source.types.values())
        versions = sum(t.versions for t in summary.source.types.values())
        lines.append(
            f"verified: the target holds the {resources:,} resources and {versions:,} versions "
            "of the source, with the same content"
        )
    if summary.blobs.missing:
        lines.append(
            f"warning: {len(summary.blobs.missing):,} DICOM instance record(s) name bytes the "
            f"source does not hold (e.g. {summary.blobs.missing[0]}); not copied"
        )
    if summary.undelivered:
        lines.append(
            f"warning: {summary.undelivered:,} outbox event(s) of the source had not been "
            "handled by its POST_COMMIT hooks; they were not carried over"
        )
    return "\n".join(lines)
