"""The `where` clause: the subset of SQL-92 ArcGIS's standardized queries accept, parsed and compiled to a predicate.

Grammar (keywords, functions and field names case-insensitive):

    condition  := term (OR term)*
    term       := factor (AND factor)*
    factor     := NOT factor | '(' condition ')' | predicate
    predicate  := operand ( cmp operand | [NOT] IN '(' operand (',' operand)* ')' | [NOT] LIKE string
                  | [NOT] BETWEEN operand AND operand | IS [NOT] NULL )
    cmp        := '=' | '<>' | '!=' | '<' | '<=' | '>' | '>='
    operand    := field | number | '-' number | 'text' ('' doubles a quote) | DATE 'yyyy-mm-dd'
                  | TIMESTAMP 'yyyy-mm-dd hh:mm:ss' | UPPER(operand) | LOWER(operand)

Types are checked when parsing, as a database would refuse them: text is compared with text, numbers with numbers,
dates with DATE/TIMESTAMP literals (or an ISO text, which ArcGIS casts). NULL follows SQL's three-valued logic: a
comparison with NULL is unknown, NOT unknown is unknown, and only rows where the condition is true are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model import NUMBER_TYPES, Layer, epoch_ms

Row = dict[str, Any]
Value = Callable[[Row], Any]
Predicate = Callable[[Row], bool | None]


class WhereError(ValueError):
    """The clause is not one ArcGIS would run."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|-)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "between", "is", "null", "date", "timestamp"})
_FUNCTIONS = {"upper": str.upper, "lower": str.lower}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, name, op, end
    text: str


@dataclass(frozen=True)
class _Operand:
    kind: str  # number, string, date
    value: Value
    literal: bool = False


def _tokenize(clause: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(clause):
        if clause[position:].strip() == "":
            break
        match = _TOKEN.match(clause, position)
        if match is None or match.lastgroup is None:
            raise WhereError(f"unexpected character at {position}: {clause[position : position + 10]!r}")
        tokens.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


class _Parser:
    def __init__(self, clause: str, layer: Layer) -> None:
        self.tokens = _tokenize(clause)
        self.position = 0
        self.layer = layer

    # -- token helpers

    @property
    def current(self) -> _Token:
        return self.tokens[self.position]

    def keyword(self, *words: str) -> bool:
        token = self.current
        if token.kind == "name" and token.text.lower() in words:
            self.position += 1
            return True
        return False

    def op(self, *symbols: str) -> str | None:
        token = self.current
        if token.kind == "op" and token.text in symbols:
            self.position += 1
            return token.text
        return None

    def expect_op(self, symbol: str) -> None:
        if self.op(symbol) is None:
            raise WhereError(f"expected {symbol!r}, found {self.current.text or 'the end'!r}")

    # -- grammar

    def parse(self) -> Predicate:
        predicate = self.condition()
        if self.current.kind != "end":
            raise WhereError(f"unexpected {self.current.text!r}")
        return predicate

    def condition(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else _any(parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else _all(parts)

    def factor(self) -> Predicate:
        if self.keyword("not"):
            return _not(self.factor())
        if self.current.kind == "op" and self.current.text == "(":
            self.position += 1
            inner = self.condition()
            self.expect_op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Predicate:
        left = self.operand()
        symbol = self.op(*_COMPARE)
        if symbol is not None:
            right = self.operand()
            _check_types(left, right)
            return _comparison(_COMPARE[symbol], left, right)
        if self.keyword("is"):
            negated = self.keyword("not")
            if not self.keyword("null"):
                raise WhereError("expected NULL after IS")
            return _is_null(left, negated)
        negated = self.keyword("not")
        if self.keyword("in"):
            self.expect_op("(")
            values = [self.operand()]
            while self.op(","):
                values.append(self.operand())
            self.expect_op(")")
            for value in values:
                _check_types(left, value)
            return _negate_if(negated, _in(left, values))
        if self.keyword("like"):
            if self.current.kind != "string":
                raise WhereError("LIKE takes a text pattern")
            pattern = _unquote(self.current.text)
            self.position += 1
            if left.kind != "string":
                raise WhereError("LIKE applies to text")
            return _negate_if(negated, _like(left, pattern))
        if self.keyword("between"):
            low = self.operand()
            if not self.keyword("and"):
                raise WhereError("expected AND in BETWEEN")
            high = self.operand()
            _check_types(left, low)
            _check_types(left, high)
            return _negate_if(negated, _between(left, low, high))
        raise WhereError(f"expected an operator after the operand, found {self.current.text or 'the end'!r}")

    def operand(self) -> _Operand:
        token = self.current
        if token.kind == "string":
            self.position += 1
            text = _unquote(token.text)
            return _Operand("string", lambda row: text, literal=True)
        if token.kind == "number" or (token.kind == "op" and token.text == "-"):
            sign = -1 if self.op("-") else 1
            if self.current.kind != "number":
                raise WhereError("expected a number after '-'")
            number = _number(self.current.text) * sign
            self.position += 1
            return _Operand("number", lambda row: number, literal=True)
        if token.kind != "name":
            raise WhereError(f"expected a field or a value, found {token.text or 'the end'!r}")
        lowered = token.text.lower()
        if lowered in ("date", "timestamp") and self.tokens[self.position + 1].kind == "string":
            self.position += 1
            literal = _unquote(self.current.text)
            self.position += 1
            try:
                moment = epoch_ms(literal)
            except ValueError:
                raise WhereError(f"invalid {lowered} literal {literal!r}") from None
            return _Operand("date", lambda row: moment, literal=True)
        if lowered in _FUNCTIONS and self.tokens[self.position + 1].text == "(":
            self.position += 2
            inner = self.operand()
            self.expect_op(")")
            if inner.kind != "string":
                raise WhereError(f"{lowered.upper()} applies to text")
            function = _FUNCTIONS[lowered]
            return _Operand("string", lambda row: _apply(function, inner.value(row)))
        if lowered in _KEYWORDS:
            raise WhereError(f"unexpected keyword {token.text}")
        field = self.layer.field(token.text)
        if field is None:
            raise WhereError(f"unknown field {token.text}")
        self.position += 1
        name = field.name
        if field.type in NUMBER_TYPES:
            kind = "number"
        elif field.type == "esriFieldTypeDate":
            kind = "date"
        else:
            kind = "string"
        return _Operand(kind, lambda row: row[name])


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def _number(text: str) -> int | float:
    return float(text) if any(char in text for char in ".eE") else int(text)


def _apply(function: Callable[[str], str], value: Any) -> Any:
    return None if value is None else function(value)


def _check_types(left: _Operand, right: _Operand) -> None:
    kinds = {left.kind, right.kind}
    if len(kinds) == 1:
        return
    if kinds == {"date", "string"}:
        # ArcGIS casts a text literal compared with a date field; the literal must still be a valid date.
        literal = right if right.kind == "string" else left
        if literal.literal:
            try:
                epoch_ms(literal.value({}))
            except ValueError:
                raise WhereError(f"invalid date {literal.value({})!r}") from None
            return
    raise WhereError(f"cannot compare {left.kind} with {right.kind}")


def _as_date(value: Any) -> Any:
    return epoch_ms(value) if isinstance(value, str) else value


def _comparison(compare: Callable[[Any, Any], bool], left: _Operand, right: _Operand) -> Predicate:
    dates = "date" in (left.kind, right.kind)

    def test(row: Row) -> bool | None:
        a, b = left.value(row), right.value(row)
        if a is None or b is None:
            return None
        if dates:
            a, b = _as_date(a), _as_date(b)
        return compare(a, b)

    return test


def _is_null(operand: _Operand, negated: bool) -> Predicate:
    return lambda row: (operand.value(row) is None) != negated


def _in(left: _Operand, values: list[_Operand]) -> Predicate:
    dates = left.kind == "date"

    def test(row: Row) -> bool | None:
        value = left.value(row)
        if value is None:
            return None
        candidates = [candidate.value(row) for candidate in values]
        if dates:
            candidates = [_as_date(candidate) for candidate in candidates]
        if value in candidates:
            return True
        return None if None in candidates else False

    return test


def _like(left: _Operand, pattern: str) -> Predicate:
    regex = re.compile(
        "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern), re.DOTALL
    )

    def test(row: Row) -> bool | None:
        value = left.value(row)
        return None if value is None else regex.fullmatch(value) is not None

    return test


def _between(left: _Operand, low: _Operand, high: _Operand) -> Predicate:
    return _all([_comparison(_COMPARE[">="], left, low), _comparison(_COMPARE["<="], left, high)])


def _all(parts: list[Predicate]) -> Predicate:
    def test(row: Row) -> bool | None:
        results = [part(row) for part in parts]
        if False in results:
            return False
        return None if None in results else True

    return test


def _any(parts: list[Predicate]) -> Predicate:
    def test(row: Row) -> bool | None:
        results = [part(row) for part in parts]
        if True in results:
            return True
        return None if None in results else False

    return test


def _not(part: Predicate) -> Predicate:
    def test(row: Row) -> bool | None:
        result = part(row)
        return None if result is None else not result

    return test


def _negate_if(negated: bool, part: Predicate) -> Predicate:
    return _not(part) if negated else part


def compile_where(clause: str, layer: Layer) -> Predicate:
    """A predicate over the layer's records (true, false or None for unknown); raises WhereError when invalid."""
    if not clause.strip():
        raise WhereError("empty clause")
    return _Parser(clause, layer).parse()
