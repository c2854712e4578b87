"""Compiling a SOQL WHERE clause to a predicate over store records: operators, literal types and
the type errors SOQL reports, LIKE patterns, relative date ranges, long-text restrictions.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from typing import Any

from . import ids
from .schema import FieldSpec, ObjectSpec
from .soql import Compare, Literal, Logical, Not
from .soql_lexer import SoqlError, unescape
from .soql_paths import Resolved, resolve, value_at
from .store import Record, Store
from .validation import parse_datetime

_TEXT = {"string", "textarea", "email", "phone", "url", "picklist", "id", "reference"}
_ORDERING = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def compile_filter(store: Store, spec: ObjectSpec, node: Any) -> Any:
    """A ``record -> bool`` predicate for a WHERE AST node, or ``SoqlError`` for a bad filter."""
    if isinstance(node, Logical):
        parts = [compile_filter(store, spec, t) for t in node.terms]
        if node.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, Not):
        inner = compile_filter(store, spec, node.term)
        return lambda r: not inner(r)
    assert isinstance(node, Compare)
    resolved = resolve(store, spec, node.path)
    field = resolved.field
    if long_text(field):
        raise SoqlError(
            "INVALID_FIELD",
            f"field '{field.name}' can not be filtered in query call",
            node.path.pos,
        )
    if any(lit.kind == "relative" for lit in node.values):
        return _relative_test(store, resolved, node)
    values = [_literal_for(field, lit) for lit in node.values]
    if node.op == "LIKE":
        if field.type not in _TEXT:
            raise SoqlError(
                "INVALID_FIELD", f"invalid operator on {field.type} field", node.path.pos
            )
        pattern = _like_regex(node.values[0])
        return lambda r: (
            isinstance(v := value_at(store, resolved, r), str) and bool(pattern.fullmatch(v))
        )
    op = node.op

    def test(record: Record) -> bool:
        actual = _comparable(field, value_at(store, resolved, record))
        if op in {"IN", "NOT IN"}:
            hit = actual in values
            return hit if op == "IN" else (not hit and actual is not None)
        expected = values[0]
        if op == "=":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if actual is None or expected is None:
            return False
        return bool(_ORDERING[op](actual, expected))

    return test


def _relative_test(store: Store, resolved: Resolved, node: Compare) -> Any:
    """A filter against TODAY, LAST_N_DAYS:n and friends: each is a range of whole days."""
    field, literal = resolved.field, node.values[0]
    if field.type not in {"date", "datetime"} or node.op not in _ORDERING.keys() | {"=", "!="}:
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{field.name}' "
            f"must be of type {field.type} and should not be enclosed in quotes",
            literal.pos,
        )
    name, days = literal.value
    today = dt.date.fromisoformat(store.today())
    first, last = {
        "TODAY": (today, today),
        "YESTERDAY": (today - dt.timedelta(days=1),) * 2,
        "TOMORROW": (today + dt.timedelta(days=1),) * 2,
        "LAST_N_DAYS": (today - dt.timedelta(days=days), today),
        "NEXT_N_DAYS": (today + dt.timedelta(days=1), today + dt.timedelta(days=days)),
    }[name]

    def day_of(record: Record) -> dt.date | None:
        value = value_at(store, resolved, record)
        if value is None:
            return None
        if field.type == "date":
            return dt.date.fromisoformat(value)
        moment = parse_datetime(value)
        return moment.date() if moment else None

    def test(record: Record) -> bool:
        day = day_of(record)
        if day is None:
            return node.op == "!="
        inside = first <= day <= last
        return {
            "=": inside,
            "!=": not inside,
            "<": day < first,
            "<=": day <= last,
            ">": day > last,
            ">=": day >= first,
        }[node.op]

    return test


def long_text(field: FieldSpec) -> bool:
    """Long text areas (Description) cannot be filtered or sorted in SOQL; SOSL finds them."""
    return field.type == "textarea" and field.length > 255


def _comparable(field: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if field.type in {"id", "reference"}:
        return value
    if field.type == "datetime":
        return parse_datetime(value)
    return value.lower() if isinstance(value, str) else value


def _literal_for(field: FieldSpec, lit: Literal) -> Any:
    """The literal converted for comparison with ``field``, or the type error SOQL reports."""
    if lit.kind == "null":
        return None
    kind = field.type
    if kind in {"id", "reference"}:
        normal = ids.normalize(lit.value) if lit.kind == "string" else None
        if normal is None:
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}", lit.pos
            )
        return normal
    expected = (
        "string"
        if kind in _TEXT
        else "boolean"
        if kind == "boolean"
        else "date"
        if kind == "date"
        else "datetime"
        if kind == "datetime"
        else "integer"
        if kind == "int"
        else "double"
    )
    ok = {
        "string": lit.kind == "string",
        "boolean": lit.kind == "boolean",
        "date": lit.kind == "date",
        "datetime": lit.kind == "datetime",
        "integer": lit.kind == "number",
        "double": lit.kind == "number",
    }[expected]
    if not ok:
        quoted = (
            "should be enclosed in quotes"
            if expected == "string"
            else ("should not be enclosed in quotes")
        )
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{field.name}' "
            f"must be of type {expected} and {quoted}",
            lit.pos,
        )
    if expected == "datetime":
        return parse_datetime(lit.value)
    return lit.value.lower() if isinstance(lit.value, str) and expected == "string" else lit.value


def _like_regex(lit: Literal) -> re.Pattern[str]:
    if lit.kind != "string":
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{lit.value}'", lit.pos)
    out, i = [], 0
    text = unescape(lit.raw, lit.pos, like=True)
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)
