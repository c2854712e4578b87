"""A SOQL subset: the parser to a small AST (tokens and escaping live in ``soql_lexer``).

Grammar (keywords case-insensitive)::

    query  := SELECT (COUNT '(' [path] ')' | path {',' path}) FROM name
              [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] {',' ...}]
              [LIMIT int] [OFFSET int]
    cond   := term {AND term} | term {OR term}      -- mixing AND/OR needs parentheses, as in SOQL
    term   := NOT term | '(' cond ')' | path op value | path [NOT] IN '(' value {',' value} ')'
              | path LIKE string
    value  := 'string' | number | TRUE | FALSE | NULL | 2024-01-31 | 2024-01-31T10:00:00Z
              | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n

Errors are ``SoqlError`` with the position, rendered by ``soql_eval`` the way Salesforce words them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .soql_lexer import SoqlError, Token, tokenize, unescape


@dataclass(frozen=True)
class Path:
    """A field reference as written: ``Email`` or ``Owner.Name``."""

    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str  # string number boolean null date datetime relative
    value: Any
    pos: int
    raw: str = ""  # a string literal's body as written (LIKE needs its escapes)


@dataclass(frozen=True)
class Compare:
    path: Path
    op: str  # = != < > <= >= LIKE IN NOT IN
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Logical:
    op: str  # AND OR
    terms: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    term: Any


@dataclass(frozen=True)
class Order:
    path: Path
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[Path, ...]
    sobject: str
    sobject_pos: int
    where: Any = None
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int | None = None
    count: bool = False  # COUNT() or COUNT(path)
    count_path: Path | None = None


# Relative date literals: a day range computed from the org's clock when the query runs.
FIXED_DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW"}
N_DATE_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS"}

_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "count",
    "true",
    "false",
    "null",
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def fail(self) -> SoqlError:
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.tok.text}'", self.tok.pos)

    def take_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.fail()
        self.i += 1

    def take_op(self, op: str) -> None:
        if self.tok.kind != "op" or self.tok.text != op:
            raise self.fail()
        self.i += 1

    def path(self) -> Path:
        if self.tok.kind != "word" or self.tok.text.lower() in _KEYWORDS:
            raise self.fail()
        self.i += 1
        return Path(self.tokens[self.i - 1].text, self.tokens[self.i - 1].pos)

    def int_value(self) -> int:
        if self.tok.kind != "number" or not self.tok.text.isdigit():
            raise self.fail()
        self.i += 1
        return int(self.tokens[self.i - 1].text)

    def query(self) -> Query:
        self.take_kw("select")
        count, count_path, fields = False, None, []
        if self.is_kw("count") and self.tokens[self.i + 1].text == "(":
            self.i += 2
            count = True
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                count_path = self.path()
            self.take_op(")")
        else:
            fields.append(self.path())
            while self.tok.text == ",":
                self.i += 1
                fields.append(self.path())
        self.take_kw("from")
        target = self.path()
        query = Query(tuple(fields), target.text, target.pos, count=count, count_path=count_path)
        where = order = limit = offset = None
        if self.is_kw("where"):
            self.i += 1
            where = self.condition()
        if self.is_kw("order"):
            self.i += 1
            self.take_kw("by")
            order = [self.order_item()]
            while self.tok.text == ",":
                self.i += 1
                order.append(self.order_item())
        if self.is_kw("limit"):
            self.i += 1
            limit = self.int_value()
        if self.is_kw("offset"):
            self.i += 1
            offset = self.int_value()
        if self.tok.kind != "eof":
            raise self.fail()
        return Query(
            query.fields,
            query.sobject,
            query.sobject_pos,
            where,
            tuple(order or ()),
            limit,
            offset,
            count,
            count_path,
        )

    def order_item(self) -> Order:
        path = self.path()
        descending = False
        if self.is_kw("asc", "desc"):
            descending = self.tok.text.lower() == "desc"
            self.i += 1
        nulls_first = not descending
        if self.is_kw("nulls"):
            self.i += 1
            if not self.is_kw("first", "last"):
                raise self.fail()
            nulls_first = self.tok.text.lower() == "first"
            self.i += 1
        return Order(path, descending, nulls_first)

    def condition(self) -> Any:
        terms = [self.term()]
        joiner = None
        while self.is_kw("and", "or"):
            word = self.tok.text.upper()
            if joiner is not None and word != joiner:
                raise self.fail()  # SOQL refuses "a AND b OR c" without parentheses
            joiner = word
            self.i += 1
            terms.append(self.term())
        return terms[0] if joiner is None else Logical(joiner, tuple(terms))

    def term(self) -> Any:
        if self.is_kw("not"):
            self.i += 1
            return Not(self.term())
        if self.tok.kind == "op" and self.tok.text == "(":
            self.i += 1
            inner = self.condition()
            self.take_op(")")
            return inner
        path = self.path()
        if self.is_kw("not") and self.tokens[self.i + 1].text.lower() == "in":
            self.i += 2
            return Compare(path, "NOT IN", self.value_list())
        if self.is_kw("in"):
            self.i += 1
            return Compare(path, "IN", self.value_list())
        if self.is_kw("like"):
            self.i += 1
            return Compare(path, "LIKE", (self.value(),))
        if self.tok.kind != "op" or self.tok.text in {"(", ")", ",", ":"}:
            raise self.fail()
        op = "!=" if self.tok.text == "<>" else self.tok.text
        self.i += 1
        return Compare(path, op, (self.value(),))

    def value_list(self) -> tuple[Literal, ...]:
        self.take_op("(")
        values = [self.value()]
        while self.tok.text == ",":
            self.i += 1
            values.append(self.value())
        self.take_op(")")
        return tuple(values)

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "op" and tok.text == ":":
            raise SoqlError("MALFORMED_QUERY", "Bind variables only allowed in Apex code", tok.pos)
        self.i += 1
        if tok.kind == "string":
            body = tok.text[1:-1]
            return Literal("string", unescape(body, tok.pos), tok.pos, body)
        if tok.kind == "number":
            number = float(tok.text) if "." in tok.text else int(tok.text)
            return Literal("number", number, tok.pos)
        if tok.kind in {"date", "datetime"}:
            return Literal(tok.kind, tok.text, tok.pos)
        if tok.kind == "word" and tok.text.lower() in {"true", "false"}:
            return Literal("boolean", tok.text.lower() == "true", tok.pos)
        if tok.kind == "word" and tok.text.lower() == "null":
            return Literal("null", None, tok.pos)
        if tok.kind == "word" and tok.text.upper() in FIXED_DATE_LITERALS:
            return Literal("relative", (tok.text.upper(), 0), tok.pos)
        if tok.kind == "word" and tok.text.upper() in N_DATE_LITERALS:
            if self.tok.text != ":" or self.tokens[self.i + 1].kind != "number":
                raise self.fail()
            self.i += 2
            return Literal(
                "relative", (tok.text.upper(), int(self.tokens[self.i - 1].text)), tok.pos
            )
        self.i -= 1
        raise self.fail()


def parse(text: str) -> Query:
    """The AST of ``text``, or ``SoqlError`` (MALFORMED_QUERY) naming the offending token."""
    return _Parser(text).query()
