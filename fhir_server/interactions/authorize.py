"""SMART scope enforcement (RO-24 controlled access; CN-4.1.4 "prevent illegal transmission and
modification"), called by the services so every door (REST, Bundle entries, later HL7 v2 and
DICOM) is held to the same rules.

``RequestContext.access is None`` (the server itself, ``--auth off``) is never restricted and
costs one comparison. Otherwise:

* an interaction needs a scope granting its letter on the type (:data:`LETTERS`): read, vread and
  instance history ``r``; search and type/system history ``s``; create ``c``; update, patch and
  upsert ``u``; delete ``d``. The capability statement is always allowed;
* ``patient/`` scopes reach only the compartment of the patient in context (the Patient
  included). A type outside the Patient CompartmentDefinition (Medication, Organization…) may be
  read and searched with a patient scope for it, never written. Without a patient in context a
  patient scope grants nothing;
* ``user/`` and ``system/`` scopes have no compartment restriction;
* a granular scope (``?category=…``) admits only resources matching its query, evaluated by the
  in-memory matcher over the resource's search index. Scopes granting the same letter on a type
  are OR'ed: a resource passes when any of them accepts it;
* AuditEvent is reached through ``system/`` scopes only.

Diagnostics name the type and the scopes that would allow the interaction, never data values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir_server.core import fhirjson
from fhir_server.core.access import CREATE, DELETE, READ, SEARCH, UPDATE, Access, ResourceScope
from fhir_server.core.errors import FhirError, Forbidden
from fhir_server.search.matcher import MemoryIndex, match_test
from fhir_server.search.model import CompartmentTest, ResourceIndex, Test
from fhir_server.search.parse import parse_conditional
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceVersion

#: The letter each interaction (and each handler of the interaction table) needs.
LETTERS: dict[str, str] = {
    "read": READ,
    "vread": READ,
    "history-instance": READ,
    "search-type": SEARCH,
    "search-system": SEARCH,
    "search-compartment": SEARCH,
    "history-type": SEARCH,
    "history-system": SEARCH,
    "create": CREATE,
    "update": UPDATE,
    "update-conditional": UPDATE,
    "patch": UPDATE,
    "delete": DELETE,
    "delete-conditional": DELETE,
}

WRITE_LETTERS = frozenset((CREATE, UPDATE, DELETE))
VERBS = {CREATE: "create", READ: "read", UPDATE: "update", DELETE: "delete", SEARCH: "search"}
PATIENT = "Patient"
AUDIT_EVENT = "AuditEvent"

#: Extracts the search index of a resource (fhir_server.search.extract.Indexer.index).
IndexOf = Callable[[dict[str, Any]], ResourceIndex]


@dataclass(frozen=True, slots=True)
class Rule:
    """One granted scope as it applies to one type: the compartment a resource must be in
    (patient scopes on compartment types) and the tests of its granular query."""

    scope: ResourceScope
    compartment: tuple[str, str] | None
    tests: tuple[Test, ...]

    @property
    def unrestricted(self) -> bool:
        return self.compartment is None and not self.tests

    def restriction(self) -> tuple[Test, ...]:
        """The rule as search tests (ANDed)."""
        if self.compartment is None:
            return self.tests
        return (CompartmentTest(*self.compartment), *self.tests)

    def accepts(self, resource_type: str, id: str, index: ResourceIndex) -> bool:
        if self.compartment is not None and self.compartment not in index.compartments:
            return False
        if not self.tests:
            return True
        corpus = MemoryIndex()  # scope queries name the resource's own elements only
        return all(match_test(t, resource_type, id, index, corpus) for t in self.tests)


class ScopePolicy:
    """The rules of one registry (parameters and compartments) and one indexer; granular
    queries are parsed once per (scope, type)."""

    def __init__(self, registry: SearchRegistry, index: IndexOf) -> None:
        self._registry = registry
        self._index = index
        self._members = frozenset(registry.compartments().get(PATIENT, {}))
        self._queries: dict[tuple[str, str], tuple[Test, ...] | None] = {}

    # --- type level ------------------------------------------------------------------------

    def rules(self, access: Access, letter: str, resource_type: str) -> tuple[Rule, ...]:
        """The rules granting ``letter`` on ``resource_type``; empty when none does."""
        out: list[Rule] = []
        for scope in access.granting(letter, resource_type):
            if resource_type == AUDIT_EVENT and scope.level != "system":
                continue
            compartment = None
            if scope.level == "patient":
                if access.patient is None:
                    continue
                if resource_type in self._members:
                    compartment = (PATIENT, access.patient)
                elif letter in WRITE_LETTERS:
                    continue
            tests = self._tests(scope, resource_type)
            if tests is not None:
                out.append(Rule(scope, compartment, tests))
        return tuple(out)

    def require(self, access: Access, letter: str, resource_type: str) -> tuple[Rule, ...]:
        """The rules granting ``letter`` on the type, or Forbidden naming what is missing."""
        found = self.rules(access, letter, resource_type)
        if not found:
            raise Forbidden(missing(access, letter, resource_type))
        return found

    # --- resource level --------------------------------------------------------------------

    def permits(
        self, access: Access, letter: str, resource_type: str, id: str, index: ResourceIndex
    ) -> bool:
        return any(
            r.accepts(resource_type, id, index) for r in self.rules(access, letter, resource_type)
        )

    def version_permitted(self, access: Access, letters: str, version: ResourceVersion) -> bool:
        """Whether any of ``letters`` allows this stored version. A deletion (no content to
        test) passes only an unrestricted rule."""
        for letter in letters:
            found = self.rules(access, letter, version.resource_type)
            if version.body is None:
                if any(r.unrestricted for r in found):
                    return True
                continue
            if not found:
                continue
            if any(r.unrestricted for r in found):
                return True
            index = self._index(fhirjson.loads(version.body))
            if any(r.accepts(version.resource_type, version.id, index) for r in found):
                return True
        return False

    def check_version(self, access: Access, letter: str, version: ResourceVersion) -> None:
        """Forbidden unless ``letter`` allows this stored version (read, or the version a
        write replaces)."""
        self.require(access, letter, version.resource_type)
        if not self.version_permitted(access, letter, version):
            raise Forbidden(outside(letter, f"{version.resource_type}/{version.id}"))

    def check_content(
        self, access: Access, letter: str, resource_type: str, id: str, index: ResourceIndex
    ) -> None:
        """Forbidden unless ``letter`` allows a resource with this index (the new content of
        a create or update)."""
        if not self.permits(access, letter, resource_type, id, index):
            raise Forbidden(outside(letter, f"the {resource_type} as written"))

    def index_of(self, body: dict[str, Any]) -> ResourceIndex:
        return self._index(body)

    # --- granular queries ------------------------------------------------------------------

    def _tests(self, scope: ResourceScope, resource_type: str) -> tuple[Test, ...] | None:
        """The tests of a scope's query on one type; None when the query cannot apply to the
        type (a parameter it lacks, a result parameter): the scope then grants nothing there."""
        if not scope.query:
            return ()
        key = (scope.text or repr(scope), resource_type)
        if key not in self._queries:
            try:
                criteria = parse_conditional(
                    self._registry, resource_type, urlencode(scope.query), None
                )
                tests: tuple[Test, ...] | None = criteria.tests or None
            except FhirError:
                tests = None
            self._queries[key] = tests
        return self._queries[key]


def missing(access: Access, letter: str, resource_type: str) -> str:
    """Why no scope grants ``letter`` on the type, and which scopes would."""
    verb = VERBS.get(letter, letter)
    if resource_type == AUDIT_EVENT:
        needed = f"system/{AUDIT_EVENT}.{letter}"
    else:
        needed = ", ".join(f"{level}/{resource_type}.{letter}" for level in ("patient", "user"))
        needed += f" or system/{resource_type}.{letter}"
    text = f"The access token grants no scope to {verb} {resource_type} (needs {needed})"
    if access.patient is None and any(s.level == "patient" for s in access.scopes):
        text += "; its patient scopes grant nothing without a patient in context"
    return text


def outside(letter: str, what: str) -> str:
    verb = VERBS.get(letter, letter)
    return (
        f"The access token's scopes do not allow it to {verb} {what}: it is outside the "
        "patient compartment or the query its scopes are restricted to"
    )


def write_letter(interaction: str, body: object, current: ResourceVersion | None) -> str:
    """The letter a pipeline write needs: by its interaction, else by what it does."""
    letter = LETTERS.get(interaction)
    if letter is not None and letter in WRITE_LETTERS:
        return letter
    if body is None:
        return DELETE
    return CREATE if current is None or current.deleted else UPDATE
