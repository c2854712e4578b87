"""The org's records in memory: validated DML, soft delete, derived fields, savepoints.

Pure and synchronous: no HTTP, no asyncio. Every write goes through ``validation.check_write``
(field level) and ``rules.check_org_rules`` (reference integrity, unique external IDs, duplicate
rules). ``savepoint``/``rollback`` give allOrNone requests their all-or-nothing semantics.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import ids, rules
from .errors import ApiError, entity_is_deleted, malformed_id, not_found
from .index import FieldIndex
from .rules import DEFAULT_DUPLICATE_RULES, DuplicateRule, ValidationRule
from .schema import LEAD_STATUSES, OPPORTUNITY_STAGES, ObjectSpec
from .validation import check_write, format_datetime

Record = dict[str, Any]


class Store:
    """Tables of records keyed by 18-character ID, one per sObject."""

    def __init__(
        self,
        schema: dict[str, ObjectSpec],
        id_factory: ids.IdFactory,
        clock: Callable[[], float],
        user_id: str,
        duplicate_rules: tuple[DuplicateRule, ...] = DEFAULT_DUPLICATE_RULES,
        validation_rules: tuple[ValidationRule, ...] = (),
    ) -> None:
        self.schema = schema
        self.ids = id_factory
        self.clock = clock
        self.user_id = user_id
        self.duplicate_rules = duplicate_rules
        self.validation_rules = validation_rules
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in schema}
        self.index = FieldIndex(
            {name: _indexed_fields(spec, duplicate_rules) for name, spec in schema.items()}
        )
        self._order: dict[str, int] = {}  # record id -> creation sequence, for stable results
        self._case_number = 1000
        self._journal: list[tuple[str, str, Record | None]] = []
        self._open_savepoints = 0
        # Records created by the save in progress (one sObject Collections call): duplicate
        # rules compare a record only with records that existed before its save.
        self.saved_together: set[str] = set()
        self._saving = False

    # -- reads -------------------------------------------------------------------------------

    def spec(self, sobject: str) -> ObjectSpec:
        for name, spec in self.schema.items():
            if name.lower() == sobject.lower():
                return spec
        raise not_found()

    def rows(self, sobject: str, *, include_deleted: bool = False) -> Iterator[Record]:
        for record in self.tables[self.spec(sobject).name].values():
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def candidates(
        self, sobject: str, field: str, value: Any, *, include_deleted: bool = False
    ) -> list[Record] | None:
        """Records whose ``field`` equals ``value`` ignoring case, in creation order; None when
        the field is not indexed (the caller scans instead)."""
        return self.candidates_any(sobject, field, (value,), include_deleted=include_deleted)

    def candidates_any(
        self, sobject: str, field: str, values: Iterable[Any], *, include_deleted: bool = False
    ) -> list[Record] | None:
        """Records whose ``field`` equals one of ``values`` ignoring case (``IN``), in creation
        order; None when the field is not indexed."""
        name = self.spec(sobject).name
        if not self.index.covers(name, field):
            return None
        table = self.tables[name]
        ids: set[str] = set().union(*(self.index.ids(name, field, v) for v in values))
        found = [table[i] for i in sorted(ids, key=self._order.__getitem__)]
        return [r for r in found if include_deleted or not r.get("IsDeleted")]

    def lookup(self, record_id: str) -> Record | None:
        """The record with this ID in any table (deleted or not), or None."""
        normal = ids.normalize(record_id)
        sobject = ids.object_for(normal) if normal else None
        if normal is None or sobject is None or sobject not in self.tables:
            return None
        return self.tables[sobject].get(normal)

    def get(self, sobject: str, raw_id: str) -> Record:
        """A live record, or MALFORMED_ID / NOT_FOUND as ``GET /sobjects/{T}/{id}`` reports."""
        return self._live(self.spec(sobject), raw_id, deleted_error=not_found())

    def _live(self, spec: ObjectSpec, raw_id: str, *, deleted_error: ApiError) -> Record:
        normal = ids.normalize(raw_id)
        if normal is None or normal[:3] != spec.key_prefix:
            raise malformed_id(f"{spec.label} ID", raw_id, "Id")
        record = self.tables[spec.name].get(normal)
        if record is None:
            raise not_found()
        if record.get("IsDeleted"):
            raise deleted_error
        return record

    def match_external(self, sobject: str, field: str, value: str) -> list[Record]:
        spec = self.spec(sobject)
        ext = spec.field(field)
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise not_found()
        if ext.name == "Id":
            record = self.lookup(value)
            return [record] if record is not None and not record.get("IsDeleted") else []
        found = self.candidates(spec.name, ext.name, value)
        rows = self.rows(spec.name) if found is None else found
        return [r for r in rows if r.get(ext.name) == value]

    # -- writes ------------------------------------------------------------------------------

    def create(self, sobject: str, body: Record, *, allow_save: bool = False) -> str:
        spec = self.spec(sobject)
        if not spec.createable:
            raise ApiError(
                400,
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                f"entity type {spec.name} does not support insert",
            )
        if any(k.lower() == "id" for k in body):
            raise ApiError(
                400, "INVALID_FIELD", "The Id field should not be specified in the sobject data."
            )
        values = check_write(spec, rules.resolve_foreign_keys(self, spec, body), creating=True)
        record: Record = {f.name: f.default for f in spec.fields}
        record.update(values)
        now = self._now()
        record_id = self.ids.new(spec.name)
        record.update(
            Id=record_id,
            CreatedDate=now,
            LastModifiedDate=now,
            SystemModstamp=now,
            CreatedById=self.user_id,
            LastModifiedById=self.user_id,
        )
        if spec.field("OwnerId") and not record.get("OwnerId"):
            record["OwnerId"] = self.user_id
        if spec.name == "Case":
            self._case_number += 1
            record["CaseNumber"] = f"{self._case_number:08d}"
        self._derive(spec, record, values)
        rules.check_org_rules(self, spec, record, values, allow_save=allow_save)
        self._write(spec.name, record_id, record)
        if self._saving:
            self.saved_together.add(record_id)
        return record_id

    def update(self, sobject: str, raw_id: str, body: Record, *, allow_save: bool = False) -> str:
        spec = self.spec(sobject)
        if not spec.updateable:
            raise ApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {spec.name} does not support update",
            )
        current = self._live(spec, raw_id, deleted_error=entity_is_deleted())
        if spec.name == "Lead" and current.get("IsConverted"):
            raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        body = {
            k: v
            for k, v in body.items()
            if not (k.lower() == "id" and ids.normalize(str(v)) == current["Id"])
        }
        values = check_write(
            spec, rules.resolve_foreign_keys(self, spec, body), creating=False, current=current
        )
        record = {**current, **values}
        now = self._now()
        record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=self.user_id)
        self._derive(spec, record, values)
        rules.check_org_rules(self, spec, record, values, allow_save=allow_save)
        self._write(spec.name, current["Id"], record)
        return str(current["Id"])

    def delete(self, sobject: str, raw_id: str) -> str:
        spec = self.spec(sobject)
        if not spec.deletable:
            raise ApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {spec.name} does not support delete",
            )
        current = self._live(spec, raw_id, deleted_error=entity_is_deleted())
        for sobject, child in rules.cascade(self, spec.name, current):
            self._soft_delete(sobject, child)
        self._soft_delete(spec.name, current)
        return str(current["Id"])

    def _soft_delete(self, sobject: str, record: Record) -> None:
        now = self._now()
        self._write(
            sobject,
            record["Id"],
            {**record, "IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now},
        )

    def upsert(
        self,
        sobject: str,
        field: str,
        value: str,
        body: Record,
        *,
        update_only: bool = False,
        allow_save: bool = False,
    ) -> tuple[str, bool]:
        """(id, created). Raises 300 MULTIPLE_CHOICES with the match URLs, 404 when none and
        ``update_only``, INVALID_FIELD when the body repeats the key or sets Id."""
        spec = self.spec(sobject)
        matches = self.match_external(spec.name, field, value)
        ext = spec.field(field)
        assert ext is not None  # match_external raised NOT_FOUND otherwise
        for key in body:
            if key.lower() in {"id", ext.name.lower()} and ext.name != "Id":
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"The {key} field should not be specified in the sobject data.",
                )
        if len(matches) > 1:
            raise ApiError(300, "MULTIPLE_CHOICES", "", extra={"ids": [r["Id"] for r in matches]})
        if matches:
            return self.update(spec.name, matches[0]["Id"], body, allow_save=allow_save), False
        if update_only or ext.name == "Id":
            raise not_found()
        return self.create(spec.name, {**body, ext.name: value}, allow_save=allow_save), True

    def replace(self, sobject: str, record: Record) -> None:
        """Write a whole record as the platform does (conversion), journaled for rollback."""
        now = self._now()
        self._write(
            self.spec(sobject).name,
            record["Id"],
            {**record, "LastModifiedDate": now, "SystemModstamp": now},
        )

    def insert_raw(self, sobject: str, fields: Record) -> str:
        """Seed a record with no validation (test fixtures, lookup tables). Returns its Id."""
        spec = self.spec(sobject)
        now = self._now()
        record: Record = {f.name: f.default for f in spec.fields}
        record.update(
            CreatedDate=now,
            LastModifiedDate=now,
            SystemModstamp=now,
            CreatedById=self.user_id,
            LastModifiedById=self.user_id,
        )
        if spec.field("OwnerId"):
            record["OwnerId"] = self.user_id
        record.update(fields)
        record.setdefault("Id", None)
        record["Id"] = record["Id"] or self.ids.new(spec.name)
        self._derive(spec, record, fields)
        self._put(spec.name, record["Id"], record)
        return str(record["Id"])

    def seed_reference_data(self, org: Record, user: Record) -> None:
        """The rows every org has: its Organization, the integration User, the LeadStatus values."""
        self.insert_raw("Organization", org)
        self.insert_raw("User", user)
        for order, (label, converted, default) in enumerate(LEAD_STATUSES, start=1):
            self.insert_raw(
                "LeadStatus",
                {
                    "MasterLabel": label,
                    "ApiName": label,
                    "SortOrder": order,
                    "IsConverted": converted,
                    "IsDefault": default,
                },
            )

    @contextlib.contextmanager
    def one_save(self) -> Iterator[None]:
        """Writes made inside are one save, as the records of one sObject Collections call are:
        "records within the same save aren't compared to each other" by duplicate rules (they
        are, like every write, by unique fields)."""
        self.saved_together, self._saving = set(), True
        try:
            yield
        finally:
            self.saved_together, self._saving = set(), False

    # -- savepoints --------------------------------------------------------------------------

    def savepoint(self) -> int:
        self._open_savepoints += 1
        return len(self._journal)

    def release(self, point: int) -> None:
        self._open_savepoints -= 1
        if self._open_savepoints == 0:
            self._journal.clear()

    def rollback(self, point: int) -> None:
        while len(self._journal) > point:
            sobject, record_id, previous = self._journal.pop()
            self._put(sobject, record_id, previous)
        self.release(point)

    # -- internals ---------------------------------------------------------------------------

    def _write(self, sobject: str, record_id: str, record: Record) -> None:
        if self._open_savepoints:
            self._journal.append((sobject, record_id, self.tables[sobject].get(record_id)))
        self._put(sobject, record_id, record)

    def _put(self, sobject: str, record_id: str, record: Record | None) -> None:
        """Set (or with None remove) a row, keeping the indexes in step."""
        table = self.tables[sobject]
        self.index.replace(sobject, record_id, table.get(record_id), record)
        if record is None:
            table.pop(record_id, None)
            self._order.pop(record_id, None)
        else:
            table[record_id] = record
            self._order.setdefault(record_id, len(self._order))

    def _now(self) -> str:
        # Salesforce keeps datetimes to the second: the API shows them as ….000+0000.
        return format_datetime(dt.datetime.fromtimestamp(int(self.clock()), dt.UTC))

    def today(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).date().isoformat()

    def _derive(self, spec: ObjectSpec, record: Record, changed: Record) -> None:
        if spec.name in {"Lead", "Contact", "User"}:
            parts = (record.get("FirstName"), record.get("LastName"))
            record["Name"] = " ".join(p for p in parts if p) or None
        elif spec.name == "Opportunity":
            stage = {s[0]: s for s in OPPORTUNITY_STAGES}.get(record.get("StageName") or "")
            if stage:
                record["IsClosed"], record["IsWon"] = stage[2], stage[3]
                if "StageName" in changed and "Probability" not in changed:
                    record["Probability"] = stage[1]
        elif spec.name == "Case":
            closed = record.get("Status") == "Closed"
            if closed and not record.get("IsClosed"):
                record["ClosedDate"] = record["LastModifiedDate"]
            record["IsClosed"] = closed
        elif spec.name == "CampaignMember":
            record["HasResponded"] = record.get("Status") == "Responded"


_ALWAYS_INDEXED = ("Email", "Name", "LastName", "CaseNumber", "Phone")


def _indexed_fields(spec: ObjectSpec, rules: tuple[DuplicateRule, ...]) -> tuple[str, ...]:
    names = [f.name for f in spec.fields if f.unique or f.external_id or f.name in _ALWAYS_INDEXED]
    names += [f for rule in rules if rule.sobject == spec.name for f in rule.fields]
    return tuple(dict.fromkeys(n for n in names if spec.field(n) is not None))
