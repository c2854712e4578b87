"""Org-level rules a write must pass beyond its own fields, and what a delete takes with it.

Reference integrity (INVALID_CROSS_REFERENCE_KEY / ENTITY_IS_DELETED), unique fields
(DUPLICATE_VALUE), campaign membership, validation rules (FIELD_CUSTOM_VALIDATION_EXCEPTION),
duplicate rules (DUPLICATES_DETECTED unless an alert-type
rule meets ``allowSave=true``; records saved together are not compared with each other) and delete cascades (DELETE_FAILED where the platform refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .schema import ObjectSpec

if TYPE_CHECKING:
    from .store import Store

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


@dataclass(frozen=True)
class ValidationRule:
    """An admin-defined validation rule: when ``error_condition(record)`` is true the write fails
    with FIELD_CUSTOM_VALIDATION_EXCEPTION, shown at ``field`` or at the top of the page."""

    sobject: str
    error_condition: Callable[[Mapping[str, Any]], bool]
    message: str
    field: str | None = None


def check_org_rules(
    store: Store, spec: ObjectSpec, record: Record, changed: Record, *, allow_save: bool
) -> None:
    """Reference integrity, unique values, campaign membership, validation and duplicate rules."""
    for name, value in changed.items():
        field = spec.field(name)
        if field is None or value is None:
            continue
        if field.type == "reference":
            target = store.lookup(value)
            if target is None:
                raise ApiError(
                    400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field.name]
                )
            if target.get("IsDeleted"):
                raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted", [field.name])
        if field.unique:
            same = store.candidates(spec.name, field.name, value)
            for other in store.rows(spec.name) if same is None else same:
                if other["Id"] != record["Id"] and other.get(field.name) == value:
                    raise ApiError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {field.name} duplicates value on record "
                        f"with id: {other['Id']}",
                        [],
                    )
    if spec.name == "CampaignMember":
        _check_campaign_member(store, record)
    for check in store.validation_rules:
        if check.sobject == spec.name and check.error_condition(record):
            raise ApiError(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                check.message,
                [check.field] if check.field else [],
            )
    for rule in store.duplicate_rules:
        if rule.sobject == spec.name and any(f in changed for f in rule.fields):
            _check_duplicates(store, spec, rule, record, allow_save=allow_save)


def _check_campaign_member(store: Store, record: Record) -> None:
    if not record.get("LeadId") and not record.get("ContactId"):
        raise ApiError(
            400,
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LeadId, ContactId]",
            ["LeadId", "ContactId"],
        )
    for other in store.rows("CampaignMember"):
        same_person = (other.get("LeadId") or other.get("ContactId")) == (
            record.get("LeadId") or record.get("ContactId")
        )
        if (
            other["Id"] != record["Id"]
            and other.get("CampaignId") == record["CampaignId"]
            and same_person
        ):
            raise ApiError(400, "DUPLICATE_VALUE", "Already a campaign member.", [])


def _check_duplicates(
    store: Store, spec: ObjectSpec, rule: DuplicateRule, record: Record, *, allow_save: bool
) -> None:
    wanted = [str(record.get(f) or "").lower() for f in rule.fields]
    if not all(wanted):
        return
    pool = store.candidates(spec.name, rule.fields[0], wanted[0])
    matches = [
        other
        for other in (store.rows(spec.name) if pool is None else pool)
        if other["Id"] != record["Id"]
        and other["Id"] not in store.saved_together
        and [str(other.get(f) or "").lower() for f in rule.fields] == wanted
    ]
    if not matches or (rule.action == "alert" and allow_save):
        return
    message = (
        "Use one of these records?"
        if rule.action == "alert"
        else "You're creating a duplicate record. We recommend you use an existing record instead."
    )
    raise ApiError(
        400,
        "DUPLICATES_DETECTED",
        message,
        [],
        extra={
            "duplicateResult": {
                "allowSave": rule.action == "alert",
                "duplicateRule": rule.rule_name,
                "duplicateRuleEntityType": spec.name,
                "errorMessage": message,
                "matchResults": [
                    {
                        "entityType": spec.name,
                        "errors": [],
                        "matchEngine": "ExactMatchEngine",
                        "matchRecords": [
                            {
                                "additionalInformation": [],
                                "fieldDiffs": [],
                                "matchConfidence": 100.0,
                                "record": {"attributes": {"type": spec.name}, "Id": m["Id"]},
                            }
                            for m in matches
                        ],
                        "rule": f"Standard_{spec.name}_Match_Rule_v1_0",
                        "size": len(matches),
                        "success": True,
                    }
                ],
            }
        },
    )


def cascade(store: Store, sobject: str, record: Record) -> list[tuple[str, Record]]:
    """The children deleted with ``record``, or DELETE_FAILED where the platform refuses.

    An account takes its contacts and opportunities with it unless one is Closed Won; a
    contact on a case cannot be deleted; campaign members go with their lead, contact or
    campaign.
    """
    record_id, name = record["Id"], record.get("Name") or record["Id"]
    children: list[tuple[str, Record]] = []
    if sobject == "Account":
        opportunities = [o for o in store.rows("Opportunity") if o.get("AccountId") == record_id]
        won = [str(o.get("Name")) for o in opportunities if o.get("IsWon")]
        if won:
            raise ApiError(
                400,
                "DELETE_FAILED",
                f"Your attempt to delete {name} could not be completed because "
                "some opportunities in that account were closed won. The "
                "opportunities that could not be deleted are shown below.: "
                f"{', '.join(won)}\n",
                [],
            )
        contacts = [c for c in store.rows("Contact") if c.get("AccountId") == record_id]
        for contact in contacts:
            children += cascade(store, "Contact", contact)
        children += [("Contact", c) for c in contacts]
        children += [("Opportunity", o) for o in opportunities]
    if sobject == "Contact":
        cases = [
            str(c.get("CaseNumber")) for c in store.rows("Case") if c.get("ContactId") == record_id
        ]
        if cases:
            raise ApiError(
                400,
                "DELETE_FAILED",
                f"Your attempt to delete {name} could not be completed because "
                f"it is associated with the following cases.: "
                f"{', '.join(cases)}\n",
                [],
            )
    if sobject in {"Lead", "Contact", "Campaign"}:
        key = f"{sobject}Id"
        children += [
            ("CampaignMember", m) for m in store.rows("CampaignMember") if m.get(key) == record_id
        ]
    return children


def resolve_foreign_keys(store: Store, spec: ObjectSpec, body: Record) -> Record:
    """``body`` with relationship references by external ID turned into lookup IDs.

    ``{"Account": {"Actionflows_Key__c": "acme"}}`` on a Contact becomes ``{"AccountId": "001…"}``,
    as the API does for creates, updates and upserts, so a write can point at its parent by a
    deterministic key without looking it up first.
    """
    resolved: Record = {}
    for key, value in body.items():
        ref = spec.by_relationship(key) if isinstance(value, dict) else None
        if ref is None or spec.field(key) is not None:
            resolved[key] = value
            continue
        target = store.spec(ref.reference_to[0])
        keys = [(k, v) for k, v in value.items() if k != "attributes"]
        ext = target.field(keys[0][0]) if len(keys) == 1 else None
        if ext is None or not ext.external_id:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"The value provided for foreign key reference "
                f"{key} is not a nested SObject with one external ID field",
                [key],
            )
        matches = store.match_external(target.name, ext.name, str(keys[0][1]))
        if len(matches) != 1:
            problem = "not found" if not matches else "matched more than one record"
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Foreign key external ID: {keys[0][1]} "
                f"{problem} for field {ext.name} in entity {target.name}",
                [],
            )
        resolved[ref.name] = matches[0]["Id"]
    return resolved
