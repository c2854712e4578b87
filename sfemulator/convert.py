"""Lead conversion as ``Database.convertLead`` does it, on the ``Store``.

One ``LeadConvert`` in, one ``LeadConvertResult`` out. The lead, and the account, contact and
opportunity it creates or merges into, change together or not at all (a savepoint per lead).
Rules (reference §4): ``convertedStatus`` must be a LeadStatus with IsConverted=true; an existing
contact (or opportunity) must belong to the given account; ``doNotCreateOpportunity`` excludes an
opportunity name or id; a converted lead cannot be converted or updated again; merging fills only
empty fields (``overwriteLeadSource`` replaces the contact's LeadSource); ``ownerId`` owns what is
created.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .store import Store

_ACCOUNT_MAP = {
    "Company": "Name",
    "Phone": "Phone",
    "Website": "Website",
    "Industry": "Industry",
    "AnnualRevenue": "AnnualRevenue",
    "NumberOfEmployees": "NumberOfEmployees",
    "Street": "BillingStreet",
    "City": "BillingCity",
    "State": "BillingState",
    "PostalCode": "BillingPostalCode",
    "Country": "BillingCountry",
}
_CONTACT_MAP = {
    "FirstName": "FirstName",
    "LastName": "LastName",
    "Salutation": "Salutation",
    "Title": "Title",
    "Email": "Email",
    "Phone": "Phone",
    "MobilePhone": "MobilePhone",
    "LeadSource": "LeadSource",
    "Description": "Description",
    "Street": "MailingStreet",
    "City": "MailingCity",
    "State": "MailingState",
    "PostalCode": "MailingPostalCode",
    "Country": "MailingCountry",
}


@dataclass(frozen=True)
class LeadConvert:
    lead_id: str
    converted_status: str | None
    account_id: str | None = None
    contact_id: str | None = None
    do_not_create_opportunity: bool = False
    opportunity_name: str | None = None
    opportunity_id: str | None = None
    overwrite_lead_source: bool = False
    owner_id: str | None = None


@dataclass(frozen=True)
class LeadConvertResult:
    lead_id: str | None
    account_id: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    errors: tuple[ApiError, ...] = ()

    @property
    def success(self) -> bool:
        return not self.errors


def convert_lead(store: Store, request: LeadConvert) -> LeadConvertResult:
    point = store.savepoint()
    try:
        result = _convert(store, request)
    except ApiError as err:
        store.rollback(point)
        return LeadConvertResult(request.lead_id or None, errors=(err,))
    store.release(point)
    return result


def _convert(store: Store, req: LeadConvert) -> LeadConvertResult:
    lead = store.lookup(req.lead_id) if req.lead_id else None
    if lead is None or lead["Id"][:3] != "00Q" or lead.get("IsDeleted"):
        raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["leadId"])
    if lead.get("IsConverted"):
        raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
    statuses = {s["MasterLabel"]: s for s in store.rows("LeadStatus")}
    status = statuses.get(req.converted_status or "")
    if status is None or not status["IsConverted"]:
        raise ApiError(
            400,
            "INVALID_STATUS",
            f"invalid convertedStatus: {req.converted_status}",
            ["convertedStatus"],
        )
    if req.do_not_create_opportunity and (req.opportunity_name or req.opportunity_id):
        raise ApiError(
            400,
            "INVALID_FIELD",
            "If doNotCreateOpportunity is true, opportunityName and opportunityId must be null",
            ["opportunityName"],
        )
    owner = {"OwnerId": req.owner_id} if req.owner_id else {}
    account_id = _account(store, lead, req.account_id, owner)
    contact_id = _contact(store, lead, account_id, req, owner)
    opportunity_id = None
    if req.opportunity_id:
        opportunity = store.get("Opportunity", req.opportunity_id)
        if opportunity.get("AccountId") not in (None, account_id):
            raise ApiError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "The opportunity ID specified does not belong to the account ID specified.",
                ["opportunityId"],
            )
        opportunity_id = str(opportunity["Id"])
    elif not req.do_not_create_opportunity:
        opportunity_id = store.create(
            "Opportunity",
            _drop_none(
                {
                    "Name": req.opportunity_name or lead.get("Company") or lead.get("Name"),
                    "AccountId": account_id,
                    "StageName": "Prospecting",
                    "CloseDate": _quarter_end(store.today()),
                    "LeadSource": lead.get("LeadSource"),
                    **owner,
                }
            ),
            allow_save=True,
        )
    converted = {
        **lead,
        "Status": status["MasterLabel"],
        "IsConverted": True,
        "ConvertedAccountId": account_id,
        "ConvertedContactId": contact_id,
        "ConvertedOpportunityId": opportunity_id,
        "ConvertedDate": store.today(),
    }
    store.replace("Lead", converted)
    return LeadConvertResult(lead["Id"], account_id, contact_id, opportunity_id)


def _account(
    store: Store, lead: dict[str, Any], account_id: str | None, owner: dict[str, str]
) -> str:
    values = _mapped(lead, _ACCOUNT_MAP)
    if not account_id:
        return store.create("Account", {**values, **owner}, allow_save=True)
    account = store.get("Account", account_id)
    _fill_empty(store, "Account", account, values)
    return str(account["Id"])


def _contact(
    store: Store, lead: dict[str, Any], account_id: str, req: LeadConvert, owner: dict[str, str]
) -> str:
    values = _mapped(lead, _CONTACT_MAP)
    if not req.contact_id:
        return store.create(
            "Contact", {**values, "AccountId": account_id, **owner}, allow_save=True
        )
    contact = store.get("Contact", req.contact_id)
    if contact.get("AccountId") != account_id:
        raise ApiError(
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            "The contact ID specified does not belong to the account ID specified.",
            ["contactId"],
        )
    _fill_empty(store, "Contact", contact, values)
    if req.overwrite_lead_source and lead.get("LeadSource"):
        store.update("Contact", contact["Id"], {"LeadSource": lead["LeadSource"]}, allow_save=True)
    return str(contact["Id"])


def _mapped(lead: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return _drop_none({target: lead.get(source) for source, target in mapping.items()})


def _fill_empty(store: Store, sobject: str, record: dict[str, Any], values: dict[str, Any]) -> None:
    gaps = {k: v for k, v in values.items() if record.get(k) in (None, "")}
    if gaps:
        store.update(sobject, record["Id"], gaps, allow_save=True)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _quarter_end(today: str) -> str:
    """The last day of the quarter ``today`` falls in (the close date the UI proposes)."""
    day = dt.date.fromisoformat(today)
    last_month = (day.month - 1) // 3 * 3 + 3
    first_of_next = dt.date(day.year + (last_month == 12), last_month % 12 + 1, 1)
    return (first_of_next - dt.timedelta(days=1)).isoformat()
