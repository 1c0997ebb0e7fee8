"""Referential integrity rules shared by the backends: which puts are checked and the errors.

Each backend finds the facts in its own store (does a target exist, is it deleted, who refers to a
resource); this module decides what a unit's final state is and words the refusals the same way
on every backend (see the port's docstring for the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhir_server.core.errors import DanglingReference, DeleteConflict, Issue
from fhir_server.storage.port import PendingPut
from fhir_server.validation.references import LocalReference

#: How many referrers a refused deletion lists.
MAX_LISTED_REFERRERS = 20

#: What is wrong with a reference's target: it is missing, or it is (or its version is) deleted.
TargetState = str  # "missing" | "deleted"


def final_puts(puts: Sequence[PendingPut]) -> dict[tuple[str, str], PendingPut]:
    """The last put of each resource of a unit: the unit is checked in its final state."""
    last: dict[tuple[str, str], PendingPut] = {}
    for put in puts:
        last[put.version.resource_type, put.version.id] = put
    return last


def is_itself(ref: LocalReference, put: PendingPut) -> bool:
    """A reference to the resource of the put, as this put stores it."""
    v = put.version
    return (
        ref.target_type == v.resource_type
        and ref.target_id == v.id
        and ref.target_version in (None, v.version)
    )


def checked_references(puts: Sequence[PendingPut]) -> list[tuple[PendingPut, LocalReference]]:
    """The references whose targets must exist: those of live puts, but not to themselves."""
    return [
        (put, ref)
        for put in puts
        if not put.version.deleted
        for ref in put.references
        if not is_itself(ref, put)
    ]


def problem_text(ref: LocalReference, state: TargetState) -> str:
    kind = ref.target_type
    if ref.target_version is None:
        if state == "missing":
            return f"refers to a {kind} that does not exist on this server"
        return f"refers to a {kind} that was deleted"
    if state == "missing":
        return f"refers to a version of a {kind} that does not exist on this server"
    return f"refers to a version of a {kind} that is a deletion"


@dataclass(frozen=True, slots=True)
class Dangling:
    put: PendingPut
    ref: LocalReference
    state: TargetState


def raise_dangling(found: Sequence[Dangling]) -> None:
    """DanglingReference listing each reference that does not resolve, by element path (never
    the id: it is a value of the resource); nothing if ``found`` is empty."""
    if not found:
        return
    issues = [
        Issue("error", "not-found", f"{d.ref.path} {problem_text(d.ref, d.state)}", (d.ref.path,))
        for d in found
    ]
    sources = [(d.put.version.resource_type, d.put.version.id) for d in found]
    count = f"{len(issues)} reference{'s' if len(issues) > 1 else ''}"
    raise DanglingReference(
        f"{count} of the resource cannot be resolved on this server "
        f"(referential integrity); first: {issues[0].diagnostics}",
        sources=sources,
        issues=issues,
    )


def raise_delete_conflict(
    resource_type: str, id: str, listed: Sequence[tuple[str, str, str]], total: int
) -> None:
    """DeleteConflict listing the first referrers (type/id and element path: ids are not
    personal data, and no value of the referring resources is quoted); nothing if none."""
    if not listed:
        return
    listed = list(listed[:MAX_LISTED_REFERRERS])
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
