"""Parser for the FHIRPath subset R4 search parameters use (http://hl7.org/fhirpath/N1/).

The grammar kept here is what the 1,375 official R4 SearchParameter expressions (and custom ones
written the same way) need: paths, ``|``, ``is``/``as``, ``=``/``!=``, ``and``, indexers, string,
boolean and number literals, ``$this``, ``%resource`` and function calls. Precedence follows the
FHIRPath specification (§ Operator precedence): ``.``/``[]`` > ``is``/``as`` > ``|`` >
``=``/``!=`` > ``and``. Anything outside the subset raises :class:`UnsupportedExpression` here or
in the compiler, never a silently different parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType


class UnsupportedExpression(ValueError):
    """A FHIRPath expression outside the supported subset, or one that cannot select anything
    on the resource type it is compiled for. Raised at compile time, with the reason."""


# --- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class This:
    """The focus: the resource at the top level, the current item inside ``where(...)``."""


@dataclass(frozen=True, slots=True)
class Variable:
    """``%resource`` / ``%rootResource``: the resource being indexed."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | bool | Decimal


@dataclass(frozen=True, slots=True)
class Child:
    """``base.name``; a path's first name is ``Child(This(), name)`` (a type name there is a
    filter on the focus's type, as in ``Patient.name``)."""

    base: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """``base.function(args)``; a call with no base is applied to the focus."""

    base: Expr
    name: str
    args: tuple[Expr, ...]


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
class Union:
    terms: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Binary:
    """``=``, ``!=`` or ``and``."""

    op: str
    left: Expr
    right: Expr


Expr = This | Variable | Literal | Child | Call | Index | TypeOp | Union | Binary


# --- tokens ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>[0-9]+(?:\.[0-9]+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
    | (?P<variable>%[A-Za-z_][A-Za-z0-9_]*|\$this)
    | (?P<op>!=|<=|>=|!~|[.()\[\],|=<>~+\-*/&])
    )""",
    re.VERBOSE,
)
_ESCAPES = MappingProxyType({"f": "\f", "n": "\n", "r": "\r", "t": "\t"})  # others: the char
_KEYWORD_OPS = frozenset({"is", "as", "and", "or", "xor", "implies", "in", "contains", "div"})

Token = tuple[str, str]  # (kind, text)


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``; UnsupportedExpression at the first character that starts
    no token (with its position, never echoing the whole text)."""
    tokens: list[Token] = []
    position = 0
    end = len(expression.rstrip())
    while position < end:
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise UnsupportedExpression(f"unexpected character at position {position}")
        kind = match.lastgroup
        assert kind is not None
        text = match[kind]
        if kind == "ident" and text in _KEYWORD_OPS:
            kind = "op"
        tokens.append((kind, text))
        position = match.end()
    return tokens


def unescape(quoted: str) -> str:
    """The value of a FHIRPath string literal (``'...'`` with ``\\`` escapes)."""
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            following = body[i + 1]
            if following == "u" and i + 5 < len(body):
                try:
                    out.append(chr(int(body[i + 2 : i + 6], 16)))
                except ValueError:
                    raise UnsupportedExpression(
                        "a \\u escape needs four hexadecimal digits"
                    ) from None
                i += 6
                continue
            out.append(_ESCAPES.get(following, following))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


# --- parser ----------------------------------------------------------------------------------


class TokenCursor:
    """Walks a token list for a recursive-descent parser; ``error`` is raised on bad syntax."""

    error: type[ValueError] = UnsupportedExpression

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise self.error(f"expected '{text}' at token {self.position}")

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "ident") and token[1] in texts

    def type_name(self) -> str:
        """``Quantity``, ``FHIR.Patient`` or ``System.String`` (the last name is kept)."""
        kind, text = self.take()
        while kind == "ident" and self.at("."):
            self.take()
            kind, text = self.take()
        if kind != "ident":
            raise self.error(f"expected a type name at token {self.position}")
        return text.strip("`")


class _Parser(TokenCursor):
    """Recursive descent over the tokens, one method per precedence level."""

    def parse(self) -> Expr:
        expr = self.and_expr()
        if self.peek() is not None:
            raise UnsupportedExpression(
                f"unsupported operator or trailing text at token {self.position + 1}"
            )
        return expr

    def and_expr(self) -> Expr:
        left = self.equality()
        while self.at("and"):
            self.take()
            left = Binary("and", left, self.equality())
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _KEYWORD_OPS:
            raise UnsupportedExpression(f"operator '{token[1]}' is not supported")
        return left

    def equality(self) -> Expr:
        left = self.union()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in ("=", "!="):
            self.take()
            return Binary(token[1], left, self.union())
        return left

    def union(self) -> Expr:
        terms = [self.type_expr()]
        while self.at("|"):
            self.take()
            terms.append(self.type_expr())
        return terms[0] if len(terms) == 1 else Union(tuple(terms))

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
                    raise UnsupportedExpression("only integer literal indexes are supported")
                self.expect("]")
                expr = Index(expr, int(text))
            else:
                return expr

    def invocation(self, base: Expr) -> Expr:
        kind, text = self.take()
        if kind != "ident" and not (kind == "op" and text in ("is", "as", "contains")):
            raise UnsupportedExpression(f"expected a name after '.' at token {self.position}")
        name = text.strip("`")
        if self.at("("):
            return Call(base, name, self.arguments())
        return Child(base, name)

    def arguments(self) -> tuple[Expr, ...]:
        self.expect("(")
        args: list[Expr] = []
        if not self.at(")"):
            args.append(self.and_expr())
            while self.at(","):
                self.take()
                args.append(self.and_expr())
        self.expect(")")
        return tuple(args)

    def term(self) -> Expr:
        kind, text = self.take()
        if kind == "string":
            return Literal(unescape(text))
        if kind == "number":
            return Literal(Decimal(text))
        if kind == "variable":
            return This() if text == "$this" else Variable(text[1:])
        if kind == "ident":
            if text in ("true", "false"):
                return Literal(text == "true")
            name = text.strip("`")
            if self.at("("):
                return Call(This(), name, self.arguments())
            return Child(This(), name)
        if text == "(":
            inner = self.and_expr()
            self.expect(")")
            return inner
        raise UnsupportedExpression(f"unexpected '{text}' at token {self.position}")


def parse(expression: str) -> Expr:
    """The AST of a FHIRPath expression of the supported subset."""
    tokens = tokenize(expression)
    if not tokens:
        raise UnsupportedExpression("the expression is empty")
    return _Parser(tokens).parse()


def split_union(expression: str) -> list[str]:
    """The source text of each top-level ``|`` term, parentheses and strings respected
    (``where(system='a|b')`` and ``(A | B)`` stay whole)."""
    terms: list[str] = []
    depth = 0
    start = 0
    position = 0
    end = len(expression.rstrip())
    while position < end:
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise UnsupportedExpression(f"unexpected character at position {position}")
        text = match["op"]
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        elif text == "|" and depth == 0:
            terms.append(expression[start : match.start("op")].strip())
            start = match.end()
        position = match.end()
    terms.append(expression[start:].strip())
    return [t for t in terms if t]
