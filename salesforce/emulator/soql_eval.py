"""Running a parsed SOQL query against the ``Store``: field resolution, filtering, ordering,
rendering records with ``attributes`` and parent-relationship objects, and Salesforce's wording
for query errors (the query echoed with a caret, ``ERROR at Row:R:Column:C``, then the reason).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass
from typing import Any

from . import ids
from .describe import attributes
from .errors import ApiError
from .schema import FieldSpec, ObjectSpec
from .soql import Compare, Literal, Logical, Not, Path, Query, SoqlError, parse, unescape
from .store import Record, Store
from .validation import parse_datetime

_TEXT = {"string", "textarea", "email", "phone", "url", "picklist", "id", "reference"}
_NUMBER = {"int", "double", "currency", "percent"}
_NO_COLUMN = ("No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
              "field, be sure to append the '__c' after the custom field name. Please reference "
              "your WSDL or the describe call for the appropriate names.")
_NO_RELATION = ("Didn't understand relationship '{name}' in field path. If you are attempting to "
                "use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names.")
_NO_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, "
            "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
            "describe call for the appropriate names.")


_ORDERING = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class QueryResult:
    total_size: int
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class _Resolved:
    """A path resolved to its hops (reference fields) and the final field."""

    hops: tuple[tuple[FieldSpec, ObjectSpec], ...]  # (reference field, parent object) per hop
    field: FieldSpec
    written: tuple[str, ...]  # canonical names for rendering: ("Owner", "Name")


def run(text: str, store: Store, version: str, *, include_deleted: bool) -> QueryResult:
    """Execute ``text``; raise ``ApiError`` 400 worded as Salesforce words query errors."""
    try:
        query = parse(text)
        return _execute(query, store, version, include_deleted=include_deleted)
    except SoqlError as err:
        raise ApiError(400, err.code, _locate(text, err.pos, err.message)) from None


def _locate(text: str, pos: int, message: str) -> str:
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"


def _execute(query: Query, store: Store, version: str, *, include_deleted: bool) -> QueryResult:
    spec = _object(store, query.sobject, query.sobject_pos)
    selected = [(_resolve(store, spec, p), p) for p in query.fields]
    seen: set[str] = set()
    for resolved, path in selected:
        key = ".".join(resolved.written).lower()
        if key in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {path.text}", path.pos)
        seen.add(key)
    predicate = _compile(store, spec, query.where) if query.where is not None else None
    pool = _indexed_pool(store, spec, query.where, include_deleted=include_deleted)
    source = store.rows(spec.name, include_deleted=include_deleted) if pool is None else pool
    rows = [r for r in source if predicate is None or predicate(r)]
    for order in reversed(query.order):
        resolved = _resolve(store, spec, order.path)
        if _long_text(resolved.field):
            raise SoqlError("INVALID_FIELD", f"field '{resolved.field.name}' can not be sorted "
                            "in a query call", order.path.pos)
        rows.sort(key=functools.partial(_sort_key, store, resolved), reverse=order.descending)
        nulls = [r for r in rows if _value(store, resolved, r) is None]
        present = [r for r in rows if _value(store, resolved, r) is not None]
        rows = nulls + present if order.nulls_first else present + nulls
    rows = rows[query.offset or 0 :]
    if query.limit is not None:
        rows = rows[: query.limit]
    if query.count:
        if query.count_path is None:
            return QueryResult(len(rows), [])
        counted = _resolve(store, spec, query.count_path)
        total = sum(1 for r in rows if _value(store, counted, r) is not None)
        return QueryResult(1, [{"attributes": {"type": "AggregateResult"}, "expr0": total}])
    records = [_render(store, spec, [s for s, _ in selected], r, version) for r in rows]
    return QueryResult(len(records), records)


def _indexed_pool(store: Store, spec: ObjectSpec, where: Any, *,
                  include_deleted: bool) -> list[Record] | None:
    """Candidate rows from an index when the filter pins an indexed field with ``=``; the
    full predicate still runs on them, so this only narrows the scan."""
    terms = where.terms if isinstance(where, Logical) and where.op == "AND" else (where,)
    for term in terms:
        if (isinstance(term, Compare) and term.op == "=" and "." not in term.path.text
                and term.values[0].kind == "string"):
            field = spec.field(term.path.text)
            if field is not None and field.type not in {"id", "reference"}:
                found = store.candidates(spec.name, field.name, term.values[0].value,
                                         include_deleted=include_deleted)
                if found is not None:
                    return found
    return None


def _object(store: Store, name: str, pos: int) -> ObjectSpec:
    try:
        return store.spec(name)
    except ApiError:
        raise SoqlError("INVALID_TYPE", _NO_TYPE.format(name=name), pos) from None


def _resolve(store: Store, spec: ObjectSpec, path: Path) -> _Resolved:
    parts = path.text.split(".")
    hops: list[tuple[FieldSpec, ObjectSpec]] = []
    written: list[str] = []
    current = spec
    for part in parts[:-1]:
        ref = current.by_relationship(part)
        if ref is None:
            raise SoqlError("INVALID_FIELD", _NO_RELATION.format(name=part), path.pos)
        parent = store.spec(ref.reference_to[0])
        hops.append((ref, parent))
        written.append(ref.relationship_name or part)
        current = parent
    field = current.field(parts[-1])
    if field is None:
        raise SoqlError("INVALID_FIELD",
                        _NO_COLUMN.format(name=path.text, entity=spec.name), path.pos)
    written.append(field.name)
    return _Resolved(tuple(hops), field, tuple(written))


def _parent(store: Store, resolved: _Resolved, record: Record, depth: int) -> Record | None:
    current: Record | None = record
    for ref, _ in resolved.hops[:depth]:
        target = current.get(ref.name) if current else None
        current = store.lookup(target) if target else None
    return current


def _value(store: Store, resolved: _Resolved, record: Record) -> Any:
    holder = _parent(store, resolved, record, len(resolved.hops))
    return None if holder is None else holder.get(resolved.field.name)


def _sort_key(store: Store, resolved: _Resolved, record: Record) -> Any:
    value = _value(store, resolved, record)
    if value is None:
        return (0, "")
    return (1, value.lower() if isinstance(value, str) else value)


def _compile(store: Store, spec: ObjectSpec, node: Any) -> Any:
    if isinstance(node, Logical):
        parts = [_compile(store, spec, t) for t in node.terms]
        if node.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, Not):
        inner = _compile(store, spec, node.term)
        return lambda r: not inner(r)
    assert isinstance(node, Compare)
    resolved = _resolve(store, spec, node.path)
    field = resolved.field
    if _long_text(field):
        raise SoqlError("INVALID_FIELD", f"field '{field.name}' can not be filtered in query call",
                        node.path.pos)
    if any(lit.kind == "relative" for lit in node.values):
        return _relative_test(store, resolved, node)
    values = [_literal_for(field, lit) for lit in node.values]
    if node.op == "LIKE":
        if field.type not in _TEXT:
            raise SoqlError("INVALID_FIELD", f"invalid operator on {field.type} field",
                            node.path.pos)
        pattern = _like_regex(node.values[0])
        return lambda r: isinstance(v := _value(store, resolved, r), str) and bool(
            pattern.fullmatch(v))
    op = node.op

    def test(record: Record) -> bool:
        actual = _comparable(field, _value(store, resolved, record))
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


def _relative_test(store: Store, resolved: _Resolved, node: Compare) -> Any:
    """A filter against TODAY, LAST_N_DAYS:n and friends: each is a range of whole days."""
    field, literal = resolved.field, node.values[0]
    if field.type not in {"date", "datetime"} or node.op not in _ORDERING.keys() | {"=", "!="}:
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{field.name}' "
                        f"must be of type {field.type} and should not be enclosed in quotes",
                        literal.pos)
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
        value = _value(store, resolved, record)
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
        return {"=": inside, "!=": not inside, "<": day < first, "<=": day <= last,
                ">": day > last, ">=": day >= first}[node.op]

    return test


def _long_text(field: FieldSpec) -> bool:
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
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}",
                            lit.pos)
        return normal
    expected = ("string" if kind in _TEXT else "boolean" if kind == "boolean" else
                "date" if kind == "date" else "datetime" if kind == "datetime" else
                "integer" if kind == "int" else "double")
    ok = {"string": lit.kind == "string", "boolean": lit.kind == "boolean",
          "date": lit.kind == "date", "datetime": lit.kind == "datetime",
          "integer": lit.kind == "number", "double": lit.kind == "number"}[expected]
    if not ok:
        quoted = "should be enclosed in quotes" if expected == "string" else (
            "should not be enclosed in quotes")
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{field.name}' "
                        f"must be of type {expected} and {quoted}", lit.pos)
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


def _render(store: Store, spec: ObjectSpec, selected: list[_Resolved], record: Record,
            version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(spec.name, record["Id"], version)}
    for resolved in selected:
        holder: dict[str, Any] | None = out
        for depth, (_ref, parent_spec) in enumerate(resolved.hops, start=1):
            key = resolved.written[depth - 1]
            assert holder is not None
            if key not in holder:
                parent = _parent(store, resolved, record, depth)
                holder[key] = None if parent is None else {
                    "attributes": attributes(parent_spec.name, parent["Id"], version)}
            holder = holder[key]
            if holder is None:
                break
        if holder is not None:
            parent = _parent(store, resolved, record, len(resolved.hops))
            holder[resolved.field.name] = None if parent is None else parent.get(
                resolved.field.name)
    return out
