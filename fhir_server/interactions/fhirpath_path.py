"""Parser for the FHIRPath subset that FHIRPath Patch paths use (http://hl7.org/fhir/R4/fhirpatch.html).

A patch path names elements of one resource (http://hl7.org/fhirpath/N1/), so the grammar kept
here is navigation and selection: element names (the resource type as a first step included),
``[n]``, ``$this``, ``%resource``, string / number / boolean literals, function calls, ``is`` /
``as``, ``=`` / ``!=``, ``and``, ``or``, ``xor`` and ``implies``, with the precedence of the
FHIRPath specification (§ Operator precedence). Which functions exist is checked here (see
:data:`FUNCTIONS`); element names need the resource's types and are checked when evaluated
(:mod:`fhir_server.interactions.fhirpath_locate`). Anything else raises :class:`PathSyntaxError`
with the position or token number, never the text of the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from fhir_server.search.fhirpath_parse import (
    TokenCursor,
    UnsupportedExpression,
    tokenize,
    unescape,
)


class PathSyntaxError(ValueError):
    """The path is not FHIRPath, or uses something outside the supported subset."""


# --- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class This:
    """``$this``: the focus (the resource at the top, the current item inside ``where()``)."""


@dataclass(frozen=True, slots=True)
class Root:
    """``%resource`` / ``%rootResource``: the resource being patched."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | bool | Decimal


@dataclass(frozen=True, slots=True)
class Name:
    """``base.name``; the first name of a path has ``This()`` as its base. A capitalised first
    name is a type name (``Patient.name``), which keeps the focus if it is of that type."""

    base: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """``base.function(args)``; ``type_name`` is the argument of ofType / as / is."""

    base: Expr
    name: str
    args: tuple[Expr, ...] = ()
    type_name: str = ""


@dataclass(frozen=True, slots=True)
class Index:
    base: Expr
    index: int


@dataclass(frozen=True, slots=True)
class TypeOp:
    """``base is Type`` / ``base as Type``."""

    base: Expr
    op: str
    type_name: str


@dataclass(frozen=True, slots=True)
class Binary:
    """``=``, ``!=``, ``and``, ``or``, ``xor`` or ``implies``."""

    op: str
    left: Expr
    right: Expr


Expr = This | Root | Literal | Name | Call | Index | TypeOp | Binary

#: Supported functions and how many arguments each takes (ofType, as and is take a type name).
FUNCTIONS = MappingProxyType(
    {
        "where": (1,),
        "exists": (0, 1),
        "empty": (0,),
        "not": (0,),
        "first": (0,),
        "last": (0,),
        "single": (0,),
        "count": (0,),
        "hasValue": (0,),
        "extension": (1,),
        "ofType": (1,),
        "as": (1,),
        "is": (1,),
    }
)
TYPE_FUNCTIONS = frozenset({"ofType", "as", "is"})
_LOGICAL = (("implies",), ("or", "xor"), ("and",))  # loosest first


class _Parser(TokenCursor):
    """Recursive descent over the tokens, one method per precedence level."""

    error = PathSyntaxError

    def parse(self) -> Expr:
        expr = self.logical(0)
        if self.peek() is not None:
            token = self.tokens[self.position]
            what = f"operator '{token[1]}'" if token[0] == "op" else "text"
            raise PathSyntaxError(f"unsupported {what} at token {self.position + 1}")
        return expr

    def logical(self, level: int) -> Expr:
        """``implies`` < ``or``/``xor`` < ``and`` < equality, all left-associative."""
        if level == len(_LOGICAL):
            return self.equality()
        left = self.logical(level + 1)
        while self.at(*_LOGICAL[level]):
            op = self.take()[1]
            left = Binary(op, left, self.logical(level + 1))
        return left

    def equality(self) -> Expr:
        left = self.type_expr()
        if self.at("=", "!="):
            op = self.take()[1]
            return Binary(op, left, self.type_expr())
        return left

    def type_expr(self) -> Expr:
        expr = self.postfix()
        while self.at("is", "as"):
            op = self.take()[1]
            expr = TypeOp(expr, op, self.type_name())
        return expr

    def postfix(self) -> Expr:
        expr = self.term()
        while True:
            if self.at("."):
                self.take()
                expr = self.invocation(expr)
            elif self.at("["):
                self.take()
                kind, text = self.take()
                if kind != "number" or not text.isdigit():
                    raise PathSyntaxError("an indexer must be a non-negative integer literal")
                self.expect("]")
                expr = Index(expr, int(text))
            else:
                return expr

    def invocation(self, base: Expr) -> Expr:
        kind, text = self.take()
        if kind != "ident" and not (kind == "op" and text.isalpha()):  # .div, .contains, .is
            raise PathSyntaxError(f"expected a name after '.' at token {self.position}")
        name = text.strip("`")
        return self.call(base, name) if self.at("(") else Name(base, name)

    def call(self, base: Expr, name: str) -> Call:
        if name == "resolve":
            raise PathSyntaxError("resolve() is not supported: a patch changes this resource only")
        if name not in FUNCTIONS:
            raise PathSyntaxError(f"the function '{name}()' is not supported")
        self.expect("(")
        if name in TYPE_FUNCTIONS:
            type_name = self.type_name()
            self.expect(")")
            return Call(base, name, (), type_name)
        args: list[Expr] = []
        if not self.at(")"):
            args.append(self.logical(0))
            while self.at(","):
                self.take()
                args.append(self.logical(0))
        self.expect(")")
        if len(args) not in FUNCTIONS[name]:
            raise PathSyntaxError(f"'{name}()' does not take {len(args)} argument(s)")
        return Call(base, name, tuple(args))

    def term(self) -> Expr:
        kind, text = self.take()
        if kind == "string":
            try:
                return Literal(unescape(text))
            except UnsupportedExpression as bad:
                raise PathSyntaxError(str(bad)) from None
        if kind == "number":
            return Literal(Decimal(text))
        if kind == "variable":
            if text == "$this":
                return This()
            if text in ("%resource", "%rootResource"):
                return Root()
            raise PathSyntaxError(f"the variable '{text}' is not supported")
        if kind == "ident":
            if text in ("true", "false"):
                return Literal(text == "true")
            name = text.strip("`")
            return self.call(This(), name) if self.at("(") else Name(This(), name)
        if text == "(":
            inner = self.logical(0)
            self.expect(")")
            return inner
        raise PathSyntaxError(f"unexpected '{text}' at token {self.position}")


def parse_path(expression: str) -> Expr:
    """The AST of a patch path; :class:`PathSyntaxError` if it is outside the subset."""
    try:
        tokens = tokenize(expression)
    except UnsupportedExpression as exc:
        raise PathSyntaxError(str(exc)) from None
    if not tokens:
        raise PathSyntaxError("the path is empty")
    return _Parser(tokens).parse()
