"""The layering of ``fhir_server`` (see /work/shared/ARCHITECTURE.md and docs/architecture.md).

Two rules, checked on the source with :mod:`ast` (no import-linter, nothing is imported):

1. Each third-party I/O library is imported only in the one package that owns it
   (:data:`THIRD_PARTY_RULES`).
2. Imports between our own packages point down the layers (:data:`LAYERS`). Importing a lower
   layer is always allowed. Importing the same layer is allowed only inside the same component,
   or for the pairs listed in :data:`SAME_LAYER_ALLOWED`. So the L4 doors (api, auth.server,
   dicom, hl7v2, workers) never import one another.

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING:``, plus
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name. A new top-level
package or module under ``fhir_server/`` fails the test until it is given a layer below.

Later issues extend the tables at the top of this file; keep them in step with ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "fhir_server"

# --------------------------------------------------------------------------------------------
# Rule tables (data). Extend these, not the checker.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryRule:
    """``libraries`` (dotted names, their submodules included) may be imported only under
    ``allowed``: paths from the repository root, a package (``fhir_server/api/``, everything below
    it) or a module (``fhir_server/core/models.py``)."""

    libraries: tuple[str, ...]
    allowed: tuple[str, ...]
    why: str

    def allows(self, module: str) -> bool:
        return any(_is_within(module, module_name(place)) for place in self.allowed)


THIRD_PARTY_RULES: tuple[LibraryRule, ...] = (
    LibraryRule(
        ("fastapi", "starlette", "uvicorn"),
        # ARCHITECTURE.md: "FastAPI/Starlette in api/ and auth/server/" (the SMART server's thin
        # Starlette adapter for authlib). uvicorn is started from the api package only.
        ("fhir_server/api/", "fhir_server/auth/server/"),
        "the HTTP framework lives in the FHIR REST door",
    ),
    LibraryRule(("sqlite3",), ("fhir_server/storage/sqlite/",), "the SQLite storage adapter"),
    LibraryRule(
        ("pymongo", "motor", "gridfs", "bson"),
        ("fhir_server/storage/mongo/",),
        "the MongoDB adapter",
    ),
    LibraryRule(("pynetdicom",), ("fhir_server/dicom/",), "the DICOM network door"),
    LibraryRule(
        ("pydicom",),
        ("fhir_server/dicom/", "fhir_server/blobs/", "fhir_server/imaging/"),
        "DICOM parsing: the DICOM door, the imaging service (gate, ImagingStudy, QIDO/WADO) and "
        "the blob store",
    ),
    LibraryRule(("hl7", "hl7apy"), ("fhir_server/hl7v2/",), "the HL7 v2 / MLLP door"),
    LibraryRule(
        ("fhir.resources", "fhir_core", "pydantic", "pydantic_core"),
        ("fhir_server/core/models.py",),
        "the one module that pins the fhir.resources R4B models",
    ),
    LibraryRule(("authlib", "joserfc"), ("fhir_server/auth/",), "SMART authorization"),
)

# Layer of each component: a top-level package or module of fhir_server, except that
# ``auth.server`` (the SMART authorization server, an ingress door) is its own component.
LAYERS: dict[str, int] = {
    # L0 core
    "core": 0,
    # L1 engines
    "validation": 1,
    "conformance": 1,  # the registry of canonical resources (StructureDefinition, ValueSet...)
    "search": 1,
    "auth": 1,  # auth policy and scopes; fhir_server/auth/server/ is L4, see below
    # L2 ports and adapters
    "storage": 2,
    "events": 2,
    "blobs": 2,
    "terminology": 2,
    # L3 services
    "interactions": 3,
    "bundle": 3,
    "operations": 3,
    "workflows": 3,
    "subscriptions": 3,
    "audit": 3,
    "imaging": 3,  # DICOM instances: RO-14 gate, ImagingStudy indexing, QIDO/WADO, worklist
    "messaging": 3,  # HL7 v2 message log (inbound/outbound states, duplicates): api + hl7v2 use it
    # L4 ingress (doors)
    "api": 4,
    "auth.server": 4,
    "dicom": 4,
    "hl7v2": 4,
    "workers": 4,
    # L5 composition
    "cli": 5,
    "settings": 5,
    "bootstrap": 5,
    "bootstrap_dicom": 5,  # the DICOM door's composition (imaging ingest, DIMSE node)
    "migrate": 5,
    "migrate_blobs": 5,
    "migrate_report": 5,
    "accounts_cli": 5,
    "progress": 5,
    "__main__": 5,
}

# Components that live below a top-level package (checked before the top-level name).
NESTED_COMPONENTS: tuple[str, ...] = ("auth.server",)

# The package's own __init__.py: holds only metadata (__version__). Anyone may import it; it
# imports nothing of ours.
ROOT_COMPONENT = "(fhir_server)"
ROOT_LAYER = 0

# Same-layer imports across components that are allowed, as (importer, imported):
# - storage <-> events: a storage unit of work appends outbox rows (events' port) and the outbox
#   relay reads them back through the storage port; both are L2 ports.
# - the L5 composition modules form one composition root (cli -> bootstrap -> settings).
_COMPOSITION = (
    "cli",
    "settings",
    "bootstrap",
    "bootstrap_dicom",
    "migrate",
    "migrate_blobs",
    "migrate_report",
    "progress",
    "accounts_cli",
    "__main__",
)
# - validation -> conformance: the validator reads StructureDefinitions from the registry.
# - operations -> interactions: FHIR operations ($validate, terminology) are services that use
#   the interactions' helpers (reading, params, authorization).
# - imaging -> interactions: the imaging service writes ImagingStudy through the FHIR service and
#   its write pipeline, and reads with the caller's request context.
SAME_LAYER_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {("storage", "events"), ("events", "storage")}
    | {("validation", "conformance"), ("operations", "interactions")}
    | {("imaging", "interactions")}
    | {(a, b) for a in _COMPOSITION for b in _COMPOSITION if a != b}
)

# --------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRef:
    """One import statement (or literal import call). ``names`` are absolute dotted names:
    ``from m import a, b`` gives ``m.a`` and ``m.b``, since ``a`` may be a submodule."""

    line: int
    names: tuple[str, ...]
    internal: bool  # a relative import, or an absolute one of fhir_server


def module_name(relpath: str) -> str:
    """``fhir_server/api/app.py`` -> ``fhir_server.api.app``; a package's __init__ -> package."""
    parts = list(Path(relpath).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _resolve_relative(current_package: str, level: int, module: str | None) -> str | None:
    parts = current_package.split(".")
    if level - 1 >= len(parts):
        return None  # beyond the top-level package
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _literal_import_call(node: ast.Call) -> str | None:
    """The module name of ``importlib.import_module("x")`` or ``__import__("x")``."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def iter_imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[ImportRef]:
    """Every import anywhere in the module (functions and ``if TYPE_CHECKING:`` included),
    relative imports resolved against ``module``."""
    current_package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(node.lineno, (alias.name,), _is_within(alias.name, PACKAGE))
        elif isinstance(node, ast.ImportFrom):
            yield _from_import(node, current_package)
        elif isinstance(node, ast.Call) and (name := _literal_import_call(node)):
            yield ImportRef(node.lineno, (name,), _is_within(name, PACKAGE))


def _from_import(node: ast.ImportFrom, current_package: str) -> ImportRef:
    if node.level == 0:
        base = node.module or ""
    else:
        resolved = _resolve_relative(current_package, node.level, node.module)
        if resolved is None:
            return ImportRef(node.lineno, ("." * node.level + (node.module or ""),), True)
        base = resolved
    names = tuple(base if a.name == "*" else f"{base}.{a.name}" for a in node.names)
    return ImportRef(node.lineno, names, node.level > 0 or _is_within(base, PACKAGE))


def component_of(module: str) -> str:
    """The layer component of a dotted name inside fhir_server."""
    parts = module.split(".")
    if len(parts) < 2:
        return ROOT_COMPONENT
    for nested in NESTED_COMPONENTS:
        if _is_within(".".join(parts[1:]), nested):
            return nested
    return parts[1]


@dataclass(frozen=True)
class Checker:
    """Checks one source file. ``top_level`` holds the top-level names that exist under
    fhir_server/, so ``from fhir_server import __version__`` is told from a subpackage."""

    top_level: frozenset[str]

    def check(self, relpath: str, source: str) -> list[str]:
        module = module_name(relpath)
        tree = ast.parse(source, filename=relpath)
        is_package = Path(relpath).name == "__init__.py"
        problems: list[str] = []
        for ref in iter_imports(tree, module, is_package):
            where = f"{relpath}:{ref.line}"
            for name in ref.names:  # one problem per statement is enough
                found = (
                    self._check_layer(where, module, name)
                    if ref.internal
                    else _check_library(where, module, name)
                )
                if found:
                    problems.append(found)
                    break
        return sorted(problems, key=_line_order)

    def _target_component(self, name: str) -> str:
        parts = name.split(".")
        if len(parts) == 2 and parts[1] not in self.top_level and parts[1] not in LAYERS:
            return ROOT_COMPONENT  # an attribute of the root package, e.g. __version__
        return component_of(name)

    def _check_layer(self, where: str, module: str, name: str) -> str | None:
        if not _is_within(name, PACKAGE):
            return f"{where}: relative import {name!r} goes above the {PACKAGE} package"
        source, target = component_of(module), self._target_component(name)
        if source == target or target == ROOT_COMPONENT:
            return None  # the root package holds only metadata (__version__): anyone may read it
        unknown = [c for c in (source, target) if c != ROOT_COMPONENT and c not in LAYERS]
        if unknown:
            return (
                f"{where}: imports {name!r}; component {unknown[0]!r} has no layer: "
                "assign one in LAYERS in tests/unit/test_layers.py (and ARCHITECTURE.md)"
            )
        mine, theirs = _layer(source), _layer(target)
        if theirs > mine:
            return (
                f"{where}: imports {name!r} ({target}, L{theirs}) from {source} (L{mine}): "
                "imports must point down the layers, never up"
            )
        if theirs == mine and (source, target) not in SAME_LAYER_ALLOWED:
            rule = (
                "the L4 doors are independent and never import one another"
                if mine == 4
                else "same-layer imports are allowed only within one component "
                "(or for a pair listed in SAME_LAYER_ALLOWED)"
            )
            return f"{where}: imports {name!r} ({target}) from {source}, both L{mine}: {rule}"
        return None


def _layer(component: str) -> int:
    return ROOT_LAYER if component == ROOT_COMPONENT else LAYERS[component]


def _check_library(where: str, module: str, name: str) -> str | None:
    for rule in THIRD_PARTY_RULES:
        library = next((lib for lib in rule.libraries if _is_within(name, lib)), None)
        if library is None or rule.allows(module):
            continue
        places = " or ".join(rule.allowed)
        return (
            f"{where}: imports {name!r}: {library} may only be imported under {places} ({rule.why})"
        )
    return None


def _line_order(problem: str) -> tuple[str, int]:
    path, _, rest = problem.partition(":")
    line = rest.partition(":")[0]
    return path, int(line) if line.isdigit() else 0


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(
        p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.relative_to(root).parts
    )


def top_level_names(root: Path = ROOT) -> frozenset[str]:
    """Top-level packages (directories holding Python files) and modules of fhir_server."""
    names: set[str] = set()
    for path in python_files(root):
        parts = path.relative_to(root / PACKAGE).parts
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0] != "__init__.py":
            names.add(Path(parts[0]).stem)
    return frozenset(names)


def unassigned_names(root: Path = ROOT) -> list[str]:
    return sorted(top_level_names(root) - LAYERS.keys())


def check_tree(root: Path = ROOT) -> list[str]:
    checker = Checker(top_level_names(root))
    problems: list[str] = []
    for path in python_files(root):
        relpath = path.relative_to(root).as_posix()
        problems.extend(checker.check(relpath, path.read_text(encoding="utf-8")))
    return problems


# --------------------------------------------------------------------------------------------
# The tests over the real tree
# --------------------------------------------------------------------------------------------


def test_the_package_is_found() -> None:
    assert (ROOT / PACKAGE / "__init__.py").is_file()
    assert python_files(), "no Python files found under fhir_server/"


def test_every_top_level_package_has_a_layer() -> None:
    unknown = unassigned_names()
    assert not unknown, (
        f"fhir_server/{unknown[0]} has no layer: assign a layer to each of {unknown} in LAYERS "
        "in tests/unit/test_layers.py (and ARCHITECTURE.md) so the layering stays complete"
    )


def test_imports_follow_the_layers_and_library_rules() -> None:
    problems = check_tree()
    assert not problems, "layering violations:\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------
# The checker is proven to bite, on synthetic sources
# --------------------------------------------------------------------------------------------

_TOP = frozenset(LAYERS) - {"auth.server"}


def _check(relpath: str, source: str) -> list[str]:
    return Checker(_TOP).check(relpath, source)


@pytest.mark.parametrize(
    ("relpath", "source", "expected"),
    [
        ("fhir_server/core/x.py", "import fastapi\n", "fhir_server/core/x.py:1: imports 'fastapi'"),
        (
            "fhir_server/interactions/x.py",
            "\n\nfrom starlette.responses import Response\n",
            "fhir_server/interactions/x.py:3: imports 'starlette.responses",
        ),
        ("fhir_server/cli.py", "import uvicorn\n", "may only be imported under fhir_server/api/"),
        ("fhir_server/storage/port.py", "import sqlite3\n", "fhir_server/storage/sqlite/"),
        ("fhir_server/storage/sqlite/x.py", "import pymongo\n", "fhir_server/storage/mongo/"),
        ("fhir_server/api/x.py", "from pynetdicom import AE\n", "fhir_server/dicom/"),
        ("fhir_server/storage/x.py", "import pydicom\n", "fhir_server/blobs/"),
        ("fhir_server/api/x.py", "import hl7\n", "fhir_server/hl7v2/"),
        (
            "fhir_server/core/fhirjson.py",
            "from fhir.resources.R4B import patient\n",
            "fhir_server/core/models.py",
        ),
        ("fhir_server/validation/x.py", "from fhir import resources\n", "fhir.resources"),
        ("fhir_server/core/x.py", "import fhir_core.types\n", "fhir_core"),
        ("fhir_server/api/x.py", "from joserfc import jwt\n", "fhir_server/auth/"),
        (
            "fhir_server/core/x.py",
            "import importlib\nimportlib.import_module('fastapi')\n",
            "fhir_server/core/x.py:2: imports 'fastapi'",
        ),
    ],
)
def test_checker_reports_a_library_outside_its_package(
    relpath: str, source: str, expected: str
) -> None:
    problems = _check(relpath, source)
    assert len(problems) == 1, problems
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("relpath", "source"),
    [
        ("fhir_server/api/app.py", "from fastapi import FastAPI\nimport uvicorn\n"),
        ("fhir_server/auth/server/app.py", "from starlette.requests import Request\n"),
        ("fhir_server/storage/sqlite/db.py", "import sqlite3\n"),
        ("fhir_server/storage/mongo/db.py", "from pymongo import AsyncMongoClient\n"),
        ("fhir_server/core/models.py", "from fhir.resources.R4B.patient import Patient\n"),
        ("fhir_server/blobs/fs.py", "import pydicom\n"),
        ("fhir_server/hl7v2/parse.py", "import hl7\n"),
        ("fhir_server/auth/scopes.py", "from joserfc import jwt\n"),
        ("fhir_server/core/x.py", "import fhirpathpy\nimport orjson\nimport json\n"),
    ],
)
def test_checker_accepts_a_library_in_its_package(relpath: str, source: str) -> None:
    assert _check(relpath, source) == []


_UP = "imports must point down the layers"
_SIDE = "same-layer imports are allowed only within one component"
_DOORS = "the L4 doors are independent"


@pytest.mark.parametrize(
    ("relpath", "source", "expected"),
    [
        ("fhir_server/core/x.py", "import fhir_server.storage.port\n", _UP),
        ("fhir_server/core/x.py", "from fhir_server import validation\n", _UP),
        ("fhir_server/validation/x.py", "from ..interactions import service\n", _UP),
        ("fhir_server/validation/__init__.py", "from ..storage import port\n", _UP),
        ("fhir_server/storage/sqlite/x.py", "from ...interactions.service import F\n", _UP),
        ("fhir_server/api/x.py", "from fhir_server.bootstrap import build\n", _UP),
        ("fhir_server/api/x.py", "from fhir_server.settings import Settings\n", _UP),
        ("fhir_server/auth/scopes.py", "from fhir_server.auth.server import app\n", _UP),
        ("fhir_server/auth/scopes.py", "from .server import app\n", _UP),
        ("fhir_server/validation/x.py", "from fhir_server.search import ast\n", _SIDE),
        ("fhir_server/storage/x.py", "from fhir_server.blobs import port\n", _SIDE),
        ("fhir_server/bundle/x.py", "from fhir_server.interactions import service\n", _SIDE),
        ("fhir_server/api/x.py", "from fhir_server.hl7v2 import mllp\n", _DOORS),
        ("fhir_server/api/x.py", "from fhir_server.auth.server import routes\n", _DOORS),
        ("fhir_server/auth/server/x.py", "from ...api import app\n", _DOORS),
        ("fhir_server/dicom/x.py", "import fhir_server.workers.jobs\n", _DOORS),
        (
            "fhir_server/core/x.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from fhir_server.storage.port import Storage\n",
            _UP,
        ),
        ("fhir_server/core/x.py", "def f() -> None:\n    from fhir_server.api import app\n", _UP),
        ("fhir_server/core/x.py", "from fhir_server.newthing import x\n", "has no layer"),
        ("fhir_server/newthing/x.py", "from fhir_server.core import errors\n", "has no layer"),
        ("fhir_server/core/x.py", "from .... import x\n", "goes above the fhir_server package"),
        ("fhir_server/__init__.py", "from fhir_server.core import errors\n", _SIDE),
    ],
)
def test_checker_reports_an_import_against_the_layers(
    relpath: str, source: str, expected: str
) -> None:
    problems = _check(relpath, source)
    assert problems, f"{relpath} importing {source!r} was not reported"
    assert all(p.startswith(relpath + ":") for p in problems), problems
    assert expected in problems[0], problems


@pytest.mark.parametrize(
    ("relpath", "source"),
    [
        ("fhir_server/core/x.py", "from fhir_server.core.errors import InvalidRequest\n"),
        ("fhir_server/core/r4/__init__.py", "from ..errors import InvalidRequest\n"),
        ("fhir_server/core/x.py", "from . import errors\nfrom .r4 import resource_types\n"),
        ("fhir_server/core/x.py", "from fhir_server import __version__\n"),
        ("fhir_server/validation/x.py", "from fhir_server.core import fhirjson\n"),
        ("fhir_server/storage/sqlite/x.py", "from ..port import Storage\n"),
        ("fhir_server/storage/sqlite/x.py", "from fhir_server.events.outbox import Row\n"),
        ("fhir_server/events/relay.py", "from ..storage.port import Storage\n"),
        ("fhir_server/interactions/x.py", "from fhir_server.validation import validate\n"),
        ("fhir_server/api/x.py", "from fhir_server.interactions.service import FhirService\n"),
        ("fhir_server/api/x.py", "from fhir_server.auth.scopes import Scope\n"),
        ("fhir_server/auth/server/x.py", "from ..scopes import Scope\n"),
        ("fhir_server/auth/server/x.py", "from . import routes\n"),
        ("fhir_server/bootstrap.py", "from fhir_server.api.app import create_app\n"),
        ("fhir_server/bootstrap.py", "from fhir_server.storage.sqlite import SqliteStorage\n"),
        ("fhir_server/cli.py", "from . import bootstrap\nfrom .settings import Settings\n"),
        ("fhir_server/__main__.py", "from fhir_server.cli import main\n"),
    ],
)
def test_checker_accepts_an_import_down_the_layers(relpath: str, source: str) -> None:
    assert _check(relpath, source) == []


def test_checker_names_file_line_import_and_rule() -> None:
    [problem] = _check("fhir_server/storage/x.py", "import os\n\nfrom fhir_server.api import app\n")
    assert problem == (
        "fhir_server/storage/x.py:3: imports 'fhir_server.api.app' (api, L4) from storage (L2): "
        "imports must point down the layers, never up"
    )


def test_module_names_and_components() -> None:
    assert module_name("fhir_server/__init__.py") == "fhir_server"
    assert module_name("fhir_server/api/__init__.py") == "fhir_server.api"
    assert module_name("fhir_server/storage/sqlite/db.py") == "fhir_server.storage.sqlite.db"
    assert component_of("fhir_server") == ROOT_COMPONENT
    assert component_of("fhir_server.auth") == "auth"
    assert component_of("fhir_server.auth.scopes") == "auth"
    assert component_of("fhir_server.auth.server") == "auth.server"
    assert component_of("fhir_server.auth.server.routes") == "auth.server"
    assert component_of("fhir_server.storage.sqlite.db") == "storage"


def test_the_tree_walk_reports_unknown_packages_and_bad_imports(tmp_path: Path) -> None:
    files = {
        "fhir_server/__init__.py": "",
        "fhir_server/core/__init__.py": "",
        "fhir_server/core/x.py": "from ..api import app\n",
        "fhir_server/api/__init__.py": "import fastapi\n",
        "fhir_server/gadgets/__init__.py": "",
        "fhir_server/widgets.py": "from fhir_server.core import x\n",
        "fhir_server/core/__pycache__/stale.py": "import fastapi\n",
    }
    for relpath, source in files.items():
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_text(source, encoding="utf-8")
    assert unassigned_names(tmp_path) == ["gadgets", "widgets"]
    problems = check_tree(tmp_path)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "fhir_server/core/x.py:1",
        "fhir_server/widgets.py:1",
    ]
    assert "(api, L4) from core (L0)" in problems[0]
    assert "component 'widgets' has no layer" in problems[1]
