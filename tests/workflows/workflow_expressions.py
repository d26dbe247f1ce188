"""Evaluates the subset of GitHub Actions expressions that job conditions here use, with GitHub's
rules, so that tests can ask "would this job run for that event?" instead of comparing text.

Supported: property paths (`github.event.pull_request.head.repo.full_name`), 'string' literals,
true/false/null, `==`, `!=`, `!`, `&&`, `||` and parentheses. Like GitHub: strings compare
without regard to case, values of different types compare as numbers, a missing property is
null, `&&`/`||` return one of their operands. Anything else is a parse error, never a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<name>[A-Za-z_][\w.-]*))"
)
_LITERALS = {"true": True, "false": False, "null": None}


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of `expression` (with or without its `${{ }}`) in `context`."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    parser = _Parser(_tokenize(text), context)
    value = parser.disjunction()
    if parser.position != len(parser.tokens):
        raise ValueError(f"unexpected {parser.tokens[parser.position]!r} in {expression!r}")
    return value


def is_truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot read {text[position:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _as_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        if not value.strip():
            return 0.0
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right):
        return left == right
    return _as_number(left) == _as_number(right)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], context: Mapping[str, Any]):
        self.tokens = tokens
        self.position = 0
        self.context = context

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, op: str) -> bool:
        if self._peek() == ("op", op):
            self.position += 1
            return True
        return False

    def disjunction(self) -> Any:
        value = self.conjunction()
        while self._take("||"):
            right = self.conjunction()
            value = value if is_truthy(value) else right
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self._take("&&"):
            right = self.comparison()
            value = right if is_truthy(value) else value
        return value

    def comparison(self) -> Any:
        left = self.negation()
        for op in ("==", "!="):
            if self._take(op):
                equal = _equal(left, self.negation())
                return equal if op == "==" else not equal
        return left

    def negation(self) -> Any:
        if self._take("!"):
            return not is_truthy(self.negation())
        return self.operand()

    def operand(self) -> Any:
        if self._take("("):
            value = self.disjunction()
            if not self._take(")"):
                raise ValueError("missing )")
            return value
        token = self._peek()
        if token is None or token[0] == "op":
            raise ValueError(f"expected a value, found {token!r}")
        self.position += 1
        kind, text = token
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if text in _LITERALS:
            return _LITERALS[text]
        value: Any = self.context
        for part in text.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value
