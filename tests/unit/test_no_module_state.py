"""Nothing is created at import time (ARCHITECTURE.md): no module-level app, client or settings.

Checked with :mod:`ast` on everything that runs when a module under ``fhir_server/`` is imported:
top-level statements, class bodies, decorators and default argument values. Function bodies run
later and are not checked, nor is an ``if __name__ == "__main__":`` block. ``bootstrap`` builds
the object graph from ``Settings``; tests build their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "fhir_server"

# Calls that must not run at import time, matched on the called dotted name (``FastAPI`` matches
# ``FastAPI(...)`` and ``fastapi.FastAPI(...)``). Extend as new clients appear.
FORBIDDEN_CALLS: tuple[str, ...] = (
    "FastAPI",
    "Starlette",
    "APIRouter",
    "Settings",
    "sqlite3.connect",
    "MongoClient",
    "AsyncMongoClient",
)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)):
        return f"{base}.{node.attr}"
    return None


def _forbidden(call: ast.Call) -> str | None:
    name = _dotted(call.func)
    if name is None:
        return None
    for pattern in FORBIDDEN_CALLS:
        if name == pattern or name.endswith("." + pattern):
            return pattern
    return None


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


class _ImportTimeCalls(ast.NodeVisitor):
    """Collects forbidden calls in the code that runs when the module is imported."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Call(self, node: ast.Call) -> None:
        if pattern := _forbidden(node):
            self.found.append((node.lineno, pattern))
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)


def import_time_problems(relpath: str, source: str) -> list[str]:
    tree = ast.parse(source, filename=relpath)
    visitor = _ImportTimeCalls()
    for statement in tree.body:
        if not _is_main_guard(statement):
            visitor.visit(statement)
    return [
        f"{relpath}:{line}: calls {pattern}(...) at import time; build it in bootstrap "
        "(or a factory function) instead: nothing is created at import time"
        for line, pattern in visitor.found
    ]


def test_nothing_is_created_at_import_time() -> None:
    problems: list[str] = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relpath = path.relative_to(ROOT).as_posix()
        problems.extend(import_time_problems(relpath, path.read_text(encoding="utf-8")))
    assert not problems, "module-level state:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "line", "pattern"),
    [
        ("from fastapi import FastAPI\napp = FastAPI()\n", 2, "FastAPI"),
        ("import fastapi\n\napp = fastapi.FastAPI(title='x')\n", 3, "FastAPI"),
        ("import sqlite3\nDB = sqlite3.connect(':memory:')\n", 2, "sqlite3.connect"),
        ("from .settings import Settings\nSETTINGS = Settings()\n", 2, "Settings"),
        ("class Holder:\n    settings = Settings()\n", 2, "Settings"),
        ("def f(s=Settings()) -> None:\n    pass\n", 1, "Settings"),
        ("@register(Settings())\ndef f() -> None:\n    pass\n", 1, "Settings"),
        ("try:\n    x = 1\nexcept Exception:\n    app = FastAPI()\n", 4, "FastAPI"),
        ("CLIENT = pymongo.AsyncMongoClient('mongodb://x')\n", 1, "AsyncMongoClient"),
    ],
)
def test_checker_reports_import_time_creation(source: str, line: int, pattern: str) -> None:
    [problem] = import_time_problems("fhir_server/x.py", source)
    assert problem.startswith(f"fhir_server/x.py:{line}: calls {pattern}(...)")


@pytest.mark.parametrize(
    "source",
    [
        "from fastapi import FastAPI\ndef create_app() -> FastAPI:\n    return FastAPI()\n",
        "async def open_db(path: str) -> None:\n    sqlite3.connect(path)\n",
        "class S:\n    def load(self) -> None:\n        self.s = Settings()\n",
        "build = lambda: Settings()\n",
        "if __name__ == '__main__':\n    app = FastAPI()\n",
        "from .settings import Settings\nDEFAULT: type[Settings] = Settings\n",
    ],
)
def test_checker_accepts_factories(source: str) -> None:
    assert import_time_problems("fhir_server/x.py", source) == []
