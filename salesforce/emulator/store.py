"""The org's records in memory: validated DML, soft delete, duplicate rules, savepoints.

Pure and synchronous: no HTTP, no asyncio. Every write goes through ``validation.check_write`` and
the org-level rules here (reference integrity, unique external IDs, duplicate rules, converted
leads). ``savepoint``/``rollback`` give allOrNone requests their all-or-nothing semantics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import ids
from .errors import ApiError, entity_is_deleted, malformed_id, not_found
from .schema import LEAD_STATUSES, OPPORTUNITY_STAGES, ObjectSpec
from .validation import check_write, format_datetime

Record = dict[str, Any]


@dataclass(frozen=True)
class DuplicateRule:
    """A matching rule on exact (case-insensitive) field values; ``alert`` honours allowSave."""

    sobject: str
    fields: tuple[str, ...] = ("Email",)
    action: str = "alert"  # "alert" (allowSave=true lets it through) or "block"
    name: str = ""

    @property
    def rule_name(self) -> str:
        return self.name or f"Standard_{self.sobject}_Duplicate_Rule"


DEFAULT_DUPLICATE_RULES = (DuplicateRule("Lead"), DuplicateRule("Contact"))


class Store:
    """Tables of records keyed by 18-character ID, one per sObject."""

    def __init__(self, schema: dict[str, ObjectSpec], id_factory: ids.IdFactory,
                 clock: Callable[[], float], user_id: str,
                 duplicate_rules: tuple[DuplicateRule, ...] = DEFAULT_DUPLICATE_RULES) -> None:
        self.schema = schema
        self.ids = id_factory
        self.clock = clock
        self.user_id = user_id
        self.duplicate_rules = duplicate_rules
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in schema}
        self._case_number = 1000
        self._journal: list[tuple[str, str, Record | None]] = []
        self._open_savepoints = 0

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
            found = self.lookup(value)
            return [found] if found is not None and not found.get("IsDeleted") else []
        return [r for r in self.rows(spec.name) if r.get(ext.name) == value]

    # -- writes ------------------------------------------------------------------------------

    def create(self, sobject: str, body: Record, *, allow_save: bool = False) -> str:
        spec = self.spec(sobject)
        if not spec.createable:
            raise ApiError(400, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                           f"entity type {spec.name} does not support insert")
        if any(k.lower() == "id" for k in body):
            raise ApiError(400, "INVALID_FIELD",
                           "The Id field should not be specified in the sobject data.")
        values = check_write(spec, body, creating=True)
        record: Record = {f.name: f.default for f in spec.fields}
        record.update(values)
        now = self._now()
        record_id = self.ids.new(spec.name)
        record.update(Id=record_id, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now,
                      CreatedById=self.user_id, LastModifiedById=self.user_id)
        if spec.field("OwnerId") and not record.get("OwnerId"):
            record["OwnerId"] = self.user_id
        if spec.name == "Case":
            self._case_number += 1
            record["CaseNumber"] = f"{self._case_number:08d}"
        self._derive(spec, record, values)
        self._check_org_rules(spec, record, values, allow_save=allow_save)
        self._write(spec.name, record_id, record)
        return record_id

    def update(self, sobject: str, raw_id: str, body: Record, *, allow_save: bool = False) -> str:
        spec = self.spec(sobject)
        current = self._live(spec, raw_id, deleted_error=entity_is_deleted())
        if spec.name == "Lead" and current.get("IsConverted"):
            raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        body = {k: v for k, v in body.items()
                if not (k.lower() == "id" and ids.normalize(str(v)) == current["Id"])}
        values = check_write(spec, body, creating=False, current=current)
        record = {**current, **values}
        now = self._now()
        record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=self.user_id)
        self._derive(spec, record, values)
        self._check_org_rules(spec, record, values, allow_save=allow_save)
        self._write(spec.name, current["Id"], record)
        return str(current["Id"])

    def delete(self, sobject: str, raw_id: str) -> str:
        spec = self.spec(sobject)
        if not spec.deletable:
            raise ApiError(400, "INVALID_TYPE_FOR_OPERATION",
                           f"entity type {spec.name} does not support delete")
        current = self._live(spec, raw_id, deleted_error=entity_is_deleted())
        for sobject, child in self._cascade(spec.name, current):
            self._soft_delete(sobject, child)
        self._soft_delete(spec.name, current)
        return str(current["Id"])

    def _soft_delete(self, sobject: str, record: Record) -> None:
        now = self._now()
        self._write(sobject, record["Id"], {**record, "IsDeleted": True,
                                            "LastModifiedDate": now, "SystemModstamp": now})

    def _cascade(self, sobject: str, record: Record) -> list[tuple[str, Record]]:
        """The children deleted with ``record``, or DELETE_FAILED where the platform refuses.

        An account takes its contacts and opportunities with it unless one is Closed Won; a
        contact on a case cannot be deleted; campaign members go with their lead, contact or
        campaign.
        """
        record_id, name = record["Id"], record.get("Name") or record["Id"]
        children: list[tuple[str, Record]] = []
        if sobject == "Account":
            opportunities = [o for o in self.rows("Opportunity") if o.get("AccountId") == record_id]
            won = [str(o.get("Name")) for o in opportunities if o.get("IsWon")]
            if won:
                raise ApiError(400, "DELETE_FAILED",
                               f"Your attempt to delete {name} could not be completed because "
                               "some opportunities in that account were closed won. The "
                               "opportunities that could not be deleted are shown below.: "
                               f"{', '.join(won)}\n", [])
            contacts = [c for c in self.rows("Contact") if c.get("AccountId") == record_id]
            for contact in contacts:
                children += self._cascade("Contact", contact)
            children += [("Contact", c) for c in contacts]
            children += [("Opportunity", o) for o in opportunities]
        if sobject == "Contact":
            cases = [str(c.get("CaseNumber")) for c in self.rows("Case")
                     if c.get("ContactId") == record_id]
            if cases:
                raise ApiError(400, "DELETE_FAILED",
                               f"Your attempt to delete {name} could not be completed because "
                               f"it is associated with the following cases.: "
                               f"{', '.join(cases)}\n", [])
        if sobject in {"Lead", "Contact", "Campaign"}:
            key = f"{sobject}Id"
            children += [("CampaignMember", m) for m in self.rows("CampaignMember")
                         if m.get(key) == record_id]
        return children

    def upsert(self, sobject: str, field: str, value: str, body: Record, *,
               update_only: bool = False, allow_save: bool = False) -> tuple[str, bool]:
        """(id, created). Raises 300 MULTIPLE_CHOICES with the match URLs, 404 when none and
        ``update_only``, INVALID_FIELD when the body repeats the key or sets Id."""
        spec = self.spec(sobject)
        matches = self.match_external(spec.name, field, value)
        ext = spec.field(field)
        assert ext is not None  # match_external raised NOT_FOUND otherwise
        for key in body:
            if key.lower() in {"id", ext.name.lower()} and ext.name != "Id":
                raise ApiError(400, "INVALID_FIELD",
                               f"The {key} field should not be specified in the sobject data.")
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
        self._write(self.spec(sobject).name, record["Id"],
                    {**record, "LastModifiedDate": now, "SystemModstamp": now})

    def insert_raw(self, sobject: str, fields: Record) -> str:
        """Seed a record with no validation (test fixtures, lookup tables). Returns its Id."""
        spec = self.spec(sobject)
        now = self._now()
        record: Record = {f.name: f.default for f in spec.fields}
        record.update(CreatedDate=now, LastModifiedDate=now, SystemModstamp=now,
                      CreatedById=self.user_id, LastModifiedById=self.user_id)
        if spec.field("OwnerId"):
            record["OwnerId"] = self.user_id
        record.update(fields)
        record.setdefault("Id", None)
        record["Id"] = record["Id"] or self.ids.new(spec.name)
        self._derive(spec, record, fields)
        self.tables[spec.name][record["Id"]] = record
        return str(record["Id"])

    def seed_reference_data(self, org: Record, user: Record) -> None:
        """The rows every org has: its Organization, the integration User, the LeadStatus values."""
        self.insert_raw("Organization", org)
        self.insert_raw("User", user)
        for order, (label, converted, default) in enumerate(LEAD_STATUSES, start=1):
            self.insert_raw("LeadStatus", {"MasterLabel": label, "ApiName": label,
                                           "SortOrder": order, "IsConverted": converted,
                                           "IsDefault": default})

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
            if previous is None:
                self.tables[sobject].pop(record_id, None)
            else:
                self.tables[sobject][record_id] = previous
        self.release(point)

    # -- internals ---------------------------------------------------------------------------

    def _write(self, sobject: str, record_id: str, record: Record) -> None:
        if self._open_savepoints:
            self._journal.append((sobject, record_id, self.tables[sobject].get(record_id)))
        self.tables[sobject][record_id] = record

    def _now(self) -> str:
        return format_datetime(dt.datetime.fromtimestamp(self.clock(), dt.UTC))

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

    def _check_org_rules(self, spec: ObjectSpec, record: Record, changed: Record, *,
                         allow_save: bool) -> None:
        for name, value in changed.items():
            field = spec.field(name)
            if field is None or value is None:
                continue
            if field.type == "reference":
                target = self.lookup(value)
                if target is None:
                    raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                                   "invalid cross reference id", [field.name])
                if target.get("IsDeleted"):
                    raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted", [field.name])
            if field.unique:
                for other in self.rows(spec.name):
                    if other["Id"] != record["Id"] and other.get(field.name) == value:
                        raise ApiError(
                            400, "DUPLICATE_VALUE",
                            f"duplicate value found: {field.name} duplicates value on record "
                            f"with id: {other['Id']}", [])
        if spec.name == "CampaignMember":
            self._check_campaign_member(record)
        for rule in self.duplicate_rules:
            if rule.sobject == spec.name and any(f in changed for f in rule.fields):
                self._check_duplicates(spec, rule, record, allow_save=allow_save)

    def _check_campaign_member(self, record: Record) -> None:
        if not record.get("LeadId") and not record.get("ContactId"):
            raise ApiError(400, "REQUIRED_FIELD_MISSING",
                           "Required fields are missing: [LeadId, ContactId]",
                           ["LeadId", "ContactId"])
        for other in self.rows("CampaignMember"):
            same_person = (other.get("LeadId") or other.get("ContactId")) == (
                record.get("LeadId") or record.get("ContactId"))
            if (other["Id"] != record["Id"] and other.get("CampaignId") == record["CampaignId"]
                    and same_person):
                raise ApiError(400, "DUPLICATE_VALUE", "Already a campaign member.", [])

    def _check_duplicates(self, spec: ObjectSpec, rule: DuplicateRule, record: Record, *,
                          allow_save: bool) -> None:
        wanted = [str(record.get(f) or "").lower() for f in rule.fields]
        if not all(wanted):
            return
        matches = [other for other in self.rows(spec.name) if other["Id"] != record["Id"]
                   and [str(other.get(f) or "").lower() for f in rule.fields] == wanted]
        if not matches or (rule.action == "alert" and allow_save):
            return
        message = ("Use one of these records?" if rule.action == "alert" else
                   "You're creating a duplicate record. We recommend you use an existing record "
                   "instead.")
        raise ApiError(400, "DUPLICATES_DETECTED", message, [], extra={"duplicateResult": {
            "allowSave": rule.action == "alert",
            "duplicateRule": rule.rule_name,
            "duplicateRuleEntityType": spec.name,
            "errorMessage": message,
            "matchResults": [{
                "entityType": spec.name, "errors": [], "matchEngine": "ExactMatchEngine",
                "matchRecords": [{"additionalInformation": [], "fieldDiffs": [],
                                  "matchConfidence": 100.0,
                                  "record": {"attributes": {"type": spec.name}, "Id": m["Id"]}}
                                 for m in matches],
                "rule": f"Standard_{spec.name}_Match_Rule_v1_0", "size": len(matches),
                "success": True}],
        }})
