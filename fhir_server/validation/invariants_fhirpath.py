"""FHIRPath evaluation for invariants, on fhirpathpy 2.2.4's engine (pinned exactly).

fhirpathpy's public ``evaluate()`` is not used: it converts every result back to JSON, wraps each
user function so that it only sees plain data, and its ``trace()`` prints to stdout. Instead
this module calls the engine (``do_eval``) with its own context, the way ``evaluate()`` does,
and adds the functions R4 invariants need and fhirpathpy lacks:

- ``hasValue()``: a single primitive value (ele-1, per-1, age-1, bdl-10...);
- ``htmlChecks()``: :func:`invariants_native.html_checks`;
- ``trace(name[, projection])``: returns its input, prints nothing;
- ``resolve()``: only references resolvable inside the instance: ``#id`` to a contained resource
  of ``%resource``, and Bundle entries of ``%rootResource`` by fullUrl or ``Type/id``; anything
  else resolves to nothing (as the reference validator does without a fetcher). Only ctm-1
  uses it in R4, as ``member.resolve().iif(empty(), true, ...)``;
- ``memberOf(valueset)``: through the caller's callback; without one the evaluation fails
  (``None``). ``conformsTo()`` is not provided: no R4 core invariant uses it.

fhirpathpy keeps two pieces of process-wide state: ``constants`` (the now()/today() of the
current evaluation, reset by each one) and ``TypeInfo.model`` (set by is/as to the context's
model, always R4 here). Concurrent evaluations in threads may share a now(); nothing else.

fhirpathpy reads a primitive's ``_name`` object as a second, separate node (so ``birthDate.count()``
is 2 when ``_birthDate`` is present); invariants on counts of primitives with extensions can
be wrong because of it. No R4 core invariant was seen to be affected on the R4 examples.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from fhir_server.validation.invariants_native import Primitive, html_checks


def _module(name: str) -> Any:
    """fhirpathpy and antlr4 ship untyped code (fhirpathpy claims py.typed): reached as Any."""
    return importlib.import_module(name)


_antlr = _module("antlr4")
_ErrorListener = _module("antlr4.error.ErrorListener").ErrorListener
_engine = _module("fhirpathpy.engine")
_nodes = _module("fhirpathpy.engine.nodes")
_util = _module("fhirpathpy.engine.util")
_constants = _module("fhirpathpy.engine.invocations.constants").constants
_registry: dict[str, Any] = _module("fhirpathpy.engine.invocations").invocation_registry
_parser = _module("fhirpathpy.parser.generated.FHIRPathParser").FHIRPathParser
_lexer = _module("fhirpathpy.parser.generated.FHIRPathLexer").FHIRPathLexer
_listener = _module("fhirpathpy.parser.ASTPathListener").ASTPathListener
ResourceNode: Any = _nodes.ResourceNode
get_data: Callable[[Any], Any] = _util.get_data

#: Called as member_of(coding_or_code, valueset_url) -> True/False, None when unknown.
MemberOf = Callable[[Any, str], bool | None]

R4_MODEL: dict[str, Any] = _module("fhirpathpy.models").models["r4"]
_ELSEWHERE: dict[str, str] = R4_MODEL["pathsDefinedElsewhere"]
_PATH_TYPES: dict[str, str] = R4_MODEL["path2Type"]
UCUM = "http://unitsofmeasure.org"


class Unsupported(Exception):
    """The expression needs something this evaluator does not provide."""


class SyntaxErrorListener(_ErrorListener):  # type: ignore[misc,valid-type]
    """fhirpathpy's parse() ignores syntax errors (antlr recovers); here they raise."""

    def syntaxError(
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise ValueError(f"FHIRPath syntax error at {column}: {msg}")


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> dict[str, Any]:
    """The parse tree of an expression, once per distinct text (parsing costs ~1 ms).

    As fhirpathpy's ``parse()``, but a syntax error or trailing text raises ValueError.
    """
    listener = SyntaxErrorListener()
    lexer = _lexer(_antlr.InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = _antlr.CommonTokenStream(lexer)
    parser = _parser(tokens)
    parser.buildParseTrees = True
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    ast = _listener()
    _antlr.ParseTreeWalker().walk(ast, parser.expression())
    if tokens.LA(1) != _antlr.Token.EOF:
        raise ValueError(f"FHIRPath syntax error: unexpected text after {text!r}")
    tree: dict[str, Any] = ast.parentStack[0]
    return tree


def functions_used(tree: dict[str, Any]) -> set[str]:
    """Names of the functions an expression calls."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        children = node.get("children") or []
        if node.get("type") == "Functn" and children:
            names.add(str(children[0].get("text")))
        stack.extend(c for c in children if isinstance(c, dict))
    return names


def type_path(base: str) -> str:
    """The path fhirpathpy's R4 model knows for an element path of a snapshot.

    A choice element is given with its concrete type in place of ``[x]``, as its JSON name
    (``Observation.valueQuantity``); left as ``[x]`` it is evaluated without type information.
    Paths under a contentReference (``Questionnaire.item.item.linkId``) are rewritten to the
    element they reuse (``Questionnaire.item.linkId``).
    """
    path = base.replace("[x]", "")
    changed = True
    while changed:
        changed = False
        parts = path.split(".")
        for i in range(len(parts), 1, -1):
            target = _ELSEWHERE.get(".".join(parts[:i]))
            if target is not None:
                path = ".".join([target, *parts[i:]])
                changed = True
                break
    # The node's own type when the model names it (Observation.effectiveDateTime: dateTime);
    # backbone elements keep their path, which the model resolves their children by.
    return _PATH_TYPES.get(path, path)


def _has_value(ctx: dict[str, Any], inputs: list[Any]) -> bool:
    if len(inputs) != 1:
        return False
    data = get_data(inputs[0])
    return data is not None and not isinstance(data, dict | list)


def _html_checks(ctx: dict[str, Any], inputs: list[Any]) -> bool:
    return len(inputs) == 1 and html_checks(get_data(inputs[0]))


def _trace(ctx: dict[str, Any], inputs: list[Any], *params: Any) -> list[Any]:
    return inputs


def _entries(root: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(root, dict) and root.get("resourceType") == "Bundle":
        for entry in root.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                yield str(entry.get("fullUrl") or ""), resource
                yield from _entries(resource)


def _resolve_one(ref: str, resource: Any, root: Any) -> dict[str, Any] | None:
    if ref.startswith("#"):
        for contained in resource.get("contained") or [] if isinstance(resource, dict) else []:
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                return contained
        return None
    for full_url, target in _entries(root):
        type_id = f"{target.get('resourceType')}/{target.get('id')}"
        if ref in (full_url, type_id) or ref.endswith("/" + type_id):
            return target
    return None


def _resolve(ctx: dict[str, Any], inputs: list[Any]) -> list[Any]:
    found = []
    variables = ctx["vars"]
    for item in inputs:
        data = get_data(item)
        ref = data.get("reference") if isinstance(data, dict) else data
        if isinstance(ref, str):
            target = _resolve_one(ref, variables.get("resource"), variables.get("rootResource"))
            if target is not None:
                found.append(ResourceNode.create_node(target))
    return found


def _member_of(ctx: dict[str, Any], inputs: list[Any], valueset: str) -> list[bool]:
    callback: MemberOf | None = ctx.get("memberOf")
    if callback is None:
        raise Unsupported("memberOf() needs a terminology callback")
    if len(inputs) != 1:
        return []
    answer = callback(get_data(inputs[0]), valueset)
    return [] if answer is None else [answer]


EXTRA_FUNCTIONS: dict[str, dict[str, Any]] = {
    "hasValue": {"fn": _has_value},
    "htmlChecks": {"fn": _html_checks},
    "trace": {"fn": _trace, "arity": {0: [], 1: ["String"], 2: ["String", "Expr"]}},
    "resolve": {"fn": _resolve},
    "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
}

#: Every function an expression may call.
KNOWN_FUNCTIONS = frozenset(_registry) | frozenset(EXTRA_FUNCTIONS)


def evaluate(
    tree: dict[str, Any],
    node: Any,
    base: str,
    resource: dict[str, Any],
    root: dict[str, Any],
    member_of: MemberOf | None = None,
) -> list[Any]:
    """The raw result collection of a parsed expression on one element instance."""
    _constants.reset()  # now() and today(): fixed for one evaluation
    if isinstance(node, Primitive):
        data: Any = node.value if node.value is not None else node.element
    else:
        data = node
    focus = [] if data is None else [ResourceNode.create_node(data, type_path(base))]
    ctx: dict[str, Any] = {
        "dataRoot": focus,
        "vars": {"context": data, "ucum": UCUM, "resource": resource, "rootResource": root},
        "model": R4_MODEL,
        "userInvocationTable": EXTRA_FUNCTIONS,
        "memberOf": member_of,
    }
    result: list[Any] = _engine.do_eval(ctx, focus, tree["children"][0])
    return result


def truth(result: list[Any]) -> bool:
    """An invariant's verdict from its result: a single boolean is itself; anything else that
    exists is true; an empty result is true too (unknown is not a violation). Firely reads it
    so; R4's own invariants rely on it: ref-1 on a display-only Reference, bdl-8 on an entry
    without fullUrl and ras-2 on a probabilityRange are empty, and the R4 examples have them."""
    if len(result) == 1:
        value = get_data(result[0])
        if isinstance(value, bool):
            return value
    return True
