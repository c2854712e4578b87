"""Running a parsed SOQL query against the ``Store``: candidate rows (indexed when possible),
filtering (``soql_filter``), ordering, paging by LIMIT/OFFSET, rendering records with
``attributes`` and parent-relationship objects, and Salesforce's wording for query errors (the
query echoed with a caret, ``ERROR at Row:R:Column:C``, then the reason).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .describe import attributes
from .errors import ApiError
from .schema import ObjectSpec
from .soql import Compare, Logical, Query, parse
from .soql_filter import compile_filter, long_text
from .soql_lexer import SoqlError
from .soql_paths import Resolved, parent_of, resolve, value_at
from .store import Record, Store

_NO_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, "
    "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)


@dataclass(frozen=True)
class QueryResult:
    total_size: int
    records: list[dict[str, Any]]


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
    selected = [(resolve(store, spec, p), p) for p in query.fields]
    seen: set[str] = set()
    for resolved, path in selected:
        key = ".".join(resolved.written).lower()
        if key in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {path.text}", path.pos)
        seen.add(key)
    predicate = compile_filter(store, spec, query.where) if query.where is not None else None
    pool = _indexed_pool(store, spec, query.where, include_deleted=include_deleted)
    source = store.rows(spec.name, include_deleted=include_deleted) if pool is None else pool
    rows = [r for r in source if predicate is None or predicate(r)]
    for order in reversed(query.order):
        resolved = resolve(store, spec, order.path)
        if long_text(resolved.field):
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{resolved.field.name}' can not be sorted in a query call",
                order.path.pos,
            )
        rows.sort(key=functools.partial(_sort_key, store, resolved), reverse=order.descending)
        nulls = [r for r in rows if value_at(store, resolved, r) is None]
        present = [r for r in rows if value_at(store, resolved, r) is not None]
        rows = nulls + present if order.nulls_first else present + nulls
    rows = rows[query.offset or 0 :]
    if query.limit is not None:
        rows = rows[: query.limit]
    if query.count:
        if query.count_path is None:
            return QueryResult(len(rows), [])
        counted = resolve(store, spec, query.count_path)
        total = sum(1 for r in rows if value_at(store, counted, r) is not None)
        return QueryResult(1, [{"attributes": {"type": "AggregateResult"}, "expr0": total}])
    records = [_render(store, spec, [s for s, _ in selected], r, version) for r in rows]
    return QueryResult(len(records), records)


def _indexed_pool(
    store: Store, spec: ObjectSpec, where: Any, *, include_deleted: bool
) -> list[Record] | None:
    """Candidate rows from an index when the filter pins an indexed field with ``=`` or ``IN``;
    the full predicate still runs on them, so this only narrows the scan."""
    terms = where.terms if isinstance(where, Logical) and where.op == "AND" else (where,)
    for term in terms:
        if (
            isinstance(term, Compare)
            and term.op in ("=", "IN")
            and "." not in term.path.text
            and all(value.kind == "string" for value in term.values)
        ):
            field = spec.field(term.path.text)
            if field is not None and field.type not in {"id", "reference"}:
                found = store.candidates_any(
                    spec.name,
                    field.name,
                    [value.value for value in term.values],
                    include_deleted=include_deleted,
                )
                if found is not None:
                    return found
    return None


def _object(store: Store, name: str, pos: int) -> ObjectSpec:
    try:
        return store.spec(name)
    except ApiError:
        raise SoqlError("INVALID_TYPE", _NO_TYPE.format(name=name), pos) from None


def _sort_key(store: Store, resolved: Resolved, record: Record) -> Any:
    value = value_at(store, resolved, record)
    if value is None:
        return (0, "")
    return (1, value.lower() if isinstance(value, str) else value)


def _render(
    store: Store, spec: ObjectSpec, selected: list[Resolved], record: Record, version: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(spec.name, record["Id"], version)}
    for resolved in selected:
        holder: dict[str, Any] | None = out
        for depth, (_ref, parent_spec) in enumerate(resolved.hops, start=1):
            key = resolved.written[depth - 1]
            assert holder is not None
            if key not in holder:
                parent = parent_of(store, resolved, record, depth)
                holder[key] = (
                    None
                    if parent is None
                    else {"attributes": attributes(parent_spec.name, parent["Id"], version)}
                )
            holder = holder[key]
            if holder is None:
                break
        if holder is not None:
            parent = parent_of(store, resolved, record, len(resolved.hops))
            holder[resolved.field.name] = (
                None if parent is None else parent.get(resolved.field.name)
            )
    return out
