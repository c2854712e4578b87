"""SOQL field paths (``Email``, ``Owner.Name``) resolved against describe metadata and read from
records through parent relationships. Shared by the filter compiler and the query runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .schema import FieldSpec, ObjectSpec
from .soql import Path
from .soql_lexer import SoqlError
from .store import Record, Store

_NO_COLUMN = (
    "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
    "field, be sure to append the '__c' after the custom field name. Please reference "
    "your WSDL or the describe call for the appropriate names."
)
_NO_RELATION = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to "
    "use a custom relationship, be sure to append the '__r' after the custom "
    "relationship name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


@dataclass(frozen=True)
class Resolved:
    """A path resolved to its hops (reference fields) and the final field."""

    hops: tuple[tuple[FieldSpec, ObjectSpec], ...]  # (reference field, parent object) per hop
    field: FieldSpec
    written: tuple[str, ...]  # canonical names for rendering: ("Owner", "Name")


def resolve(store: Store, spec: ObjectSpec, path: Path) -> Resolved:
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
        raise SoqlError(
            "INVALID_FIELD", _NO_COLUMN.format(name=path.text, entity=spec.name), path.pos
        )
    written.append(field.name)
    return Resolved(tuple(hops), field, tuple(written))


def parent_of(store: Store, resolved: Resolved, record: Record, depth: int) -> Record | None:
    current: Record | None = record
    for ref, _ in resolved.hops[:depth]:
        target = current.get(ref.name) if current else None
        current = store.lookup(target) if target else None
    return current


def value_at(store: Store, resolved: Resolved, record: Record) -> Any:
    holder = parent_of(store, resolved, record, len(resolved.hops))
    return None if holder is None else holder.get(resolved.field.name)
