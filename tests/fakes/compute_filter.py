"""The `filter` parameter of Compute list calls, as far as the fake needs it.

Two syntaxes exist. The legacy one is a single `<field> eq|ne <RE2 regex>` that must match the
whole value (travis-ci/worker uses it: `name eq ^travis-ci.+`, `region eq <url>`). The newer
one combines comparisons `<field> = != < > <= >= : <value>` with AND, OR, NOT and
parentheses (`labels.created-by = travis-worker AND creationTimestamp < "2024-01-01"`);
`:` with `*` tests presence. Fields are dotted paths into the resource's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_LEGACY = re.compile(r"^\s*([\w.\-]+)\s+(eq|ne)\s+(.+?)\s*$")
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|!=|<=|>=|=|<|>|:|[^\s()"=!<>:]+)')


def field_value(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def compile_filter(text: str | None) -> Predicate:
    """A predicate over a resource's JSON; an empty filter matches everything."""
    if not text or not text.strip():
        return lambda resource: True
    legacy = _LEGACY.match(text)
    if legacy:
        path, operator, pattern = legacy.groups()
        regex = re.compile(pattern.strip().strip('"'))

        def matches(resource: dict[str, Any]) -> bool:
            value = field_value(resource, path)
            hit = value is not None and regex.fullmatch(str(value)) is not None
            return hit if operator == "eq" else not hit

        return matches
    parser = _Parser(_tokenize(text))
    predicate = parser.expression()
    if parser.position != len(parser.tokens):
        raise ValueError(f"unexpected {parser.tokens[parser.position]!r} in filter {text!r}")
    return predicate


def _tokenize(text: str) -> list[str]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot parse filter {text!r} at {position}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    """expression := conjunction (OR conjunction)*; conjunction := unary ([AND] unary)*."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("filter ends too early")
        self.position += 1
        return token

    def expression(self) -> Predicate:
        terms = [self._conjunction()]
        while self._peek() == "OR":
            self._take()
            terms.append(self._conjunction())
        return lambda resource: any(term(resource) for term in terms)

    def _conjunction(self) -> Predicate:
        terms = [self._unary()]
        while self._peek() not in (None, ")", "OR"):
            if self._peek() == "AND":
                self._take()
            terms.append(self._unary())
        return lambda resource: all(term(resource) for term in terms)

    def _unary(self) -> Predicate:
        token = self._peek()
        if token in ("NOT", "-"):
            self._take()
            inner = self._unary()
            return lambda resource: not inner(resource)
        if token == "(":
            self._take()
            inner = self.expression()
            if self._take() != ")":
                raise ValueError("unbalanced parentheses in filter")
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        path = self._take()
        operator = self._take()
        raw = self._take()
        value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        return _compare(path, operator, value)


def _compare(path: str, operator: str, value: str) -> Predicate:
    def check(resource: dict[str, Any]) -> bool:
        actual = field_value(resource, path)
        if operator == ":":
            return actual is not None if value == "*" else value in str(actual or "")
        if actual is None:
            return operator == "!="
        text = str(actual).lower() if isinstance(actual, bool) else str(actual)
        if operator == "=":
            return text == value
        if operator == "!=":
            return text != value
        if operator == "<":
            return text < value
        if operator == ">":
            return text > value
        if operator == "<=":
            return text <= value
        if operator == ">=":
            return text >= value
        raise ValueError(f"unknown filter operator {operator!r}")

    return check
