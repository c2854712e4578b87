"""The six Salesforce objects as the catalogue sees them: plain data, no behaviour.

For each object: its API name, where the seed's ``name`` and ``phone`` inputs go, which fields
Salesforce requires on create and the documented default for each, and what find filters on
and returns. ``docs/actions.md`` is the prose version of these tables; keep them in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from pipeline.actions import ValueType

# Salesforce's own web-to-lead placeholder when a form has no company field.
LEAD_COMPANY_PLACEHOLDER = "[not provided]"
# First stage of the default sales process in every new org.
OPPORTUNITY_STAGE = "Prospecting"
OPPORTUNITY_CLOSE_DAYS = 30


@dataclass(frozen=True, slots=True)
class Column:
    """One find output: its snake_case name, the Salesforce field it reads, and its type."""

    output: str
    field: str
    type: ValueType
    description: str = ""


@dataclass(frozen=True, slots=True)
class RequiredField:
    """A field Salesforce rejects a create without.

    ``source`` names the input that fills it, if any; ``default`` computes the built-in value
    (given today's date) used when neither that input, ``extra_fields`` nor
    ``options.defaults`` supplies one.
    """

    field: str
    source: str | None = None
    default: Callable[[date], Any] | None = None
    default_doc: str = ""


@dataclass(frozen=True, slots=True)
class ObjectModel:
    """How the seed's generic inputs land on one Salesforce object."""

    object: str
    sobject: str
    name_fields: tuple[str, ...]  # ("FirstName", "LastName") means split; else one field
    phone_field: str | None  # None: the object has no Phone field, so no phone input
    required: tuple[RequiredField, ...]
    find_filters: Mapping[str, str]  # find input -> the field it must equal
    find_columns: tuple[Column, ...]
    # Long text area fields cannot appear in a SOQL WHERE clause, so find compares them after
    # the query, over the records the other filters selected.
    find_after_query: frozenset[str] = frozenset()
    deletable: bool = False


def _close_date(today: date) -> str:
    return (today + timedelta(days=OPPORTUNITY_CLOSE_DAYS)).isoformat()


def _col(output: str, field: str, type_: ValueType = "string", description: str = "") -> Column:
    return Column(output, field, type_, description)


_CREATED = _col("created_date", "CreatedDate", "string", "ISO 8601 datetime, UTC")
_MODIFIED = _col("last_modified_date", "LastModifiedDate", "string", "ISO 8601 datetime, UTC")

LEAD_COLUMNS = (
    _col("id", "Id", "id"),
    _col("first_name", "FirstName"),
    _col("last_name", "LastName"),
    _col("name", "Name", description="first and last name, as Salesforce composes it"),
    _col("email", "Email"),
    _col("phone", "Phone"),
    _col("mobile_phone", "MobilePhone"),
    _col("company", "Company"),
    _col("title", "Title"),
    _col("status", "Status"),
    _col("lead_source", "LeadSource"),
    _col("rating", "Rating", description="Hot, Warm or Cold"),
    _col("industry", "Industry"),
    _col("is_converted", "IsConverted", "boolean"),
    _col("converted_account_id", "ConvertedAccountId", "id"),
    _col("converted_contact_id", "ConvertedContactId", "id"),
    _col("converted_opportunity_id", "ConvertedOpportunityId", "id"),
    _col("owner_id", "OwnerId", "id"),
    _CREATED,
    _MODIFIED,
    _col("description", "Description"),
)

CONTACT_COLUMNS = (
    _col("id", "Id", "id"),
    _col("first_name", "FirstName"),
    _col("last_name", "LastName"),
    _col("name", "Name", description="first and last name, as Salesforce composes it"),
    _col("email", "Email"),
    _col("phone", "Phone"),
    _col("mobile_phone", "MobilePhone"),
    _col("title", "Title"),
    _col("department", "Department"),
    _col("account_id", "AccountId", "id"),
    _col("lead_source", "LeadSource"),
    _col("mailing_city", "MailingCity"),
    _col("mailing_country", "MailingCountry"),
    _col("owner_id", "OwnerId", "id"),
    _CREATED,
    _MODIFIED,
    _col("description", "Description"),
)

OPPORTUNITY_COLUMNS = (
    _col("id", "Id", "id"),
    _col("name", "Name"),
    _col("stage_name", "StageName"),
    _col("amount", "Amount", "number"),
    _col("probability", "Probability", "number", "percent, 0-100"),
    _col("close_date", "CloseDate", "date"),
    _col("forecast_category", "ForecastCategoryName", description="Pipeline, Best Case, …"),
    _col("is_closed", "IsClosed", "boolean"),
    _col("is_won", "IsWon", "boolean"),
    _col("account_id", "AccountId", "id"),
    _col("owner_id", "OwnerId", "id"),
    _col("type", "Type"),
    _col("next_step", "NextStep"),
    _col("lead_source", "LeadSource"),
    _CREATED,
    _MODIFIED,
)

CASE_COLUMNS = (
    _col("id", "Id", "id"),
    _col("case_number", "CaseNumber", description="auto-number, e.g. 00001026"),
    _col("subject", "Subject"),
    _col("status", "Status"),
    _col("priority", "Priority"),
    _col("origin", "Origin"),
    _col("type", "Type"),
    _col("reason", "Reason"),
    _col("contact_id", "ContactId", "id"),
    _col("account_id", "AccountId", "id"),
    _col("owner_id", "OwnerId", "id"),
    _col("is_closed", "IsClosed", "boolean"),
    _col("closed_date", "ClosedDate", "string", "ISO 8601 datetime, UTC; null while open"),
    _CREATED,
    _MODIFIED,
    _col("description", "Description"),
)

_PERSON_FILTERS = MappingProxyType(
    {"first_name": "FirstName", "last_name": "LastName", "email": "Email"}
)

MODELS: Mapping[str, ObjectModel] = MappingProxyType(
    {
        "lead": ObjectModel(
            object="lead",
            sobject="Lead",
            name_fields=("FirstName", "LastName"),
            phone_field="Phone",
            required=(
                RequiredField("LastName", source="name"),
                RequiredField(
                    "Company",
                    default=lambda _today: LEAD_COMPANY_PLACEHOLDER,
                    default_doc=f'"{LEAD_COMPANY_PLACEHOLDER}"',
                ),
            ),
            find_filters=_PERSON_FILTERS,
            find_columns=LEAD_COLUMNS,
            deletable=True,
        ),
        "contact": ObjectModel(
            object="contact",
            sobject="Contact",
            name_fields=("FirstName", "LastName"),
            phone_field="Phone",
            required=(RequiredField("LastName", source="name"),),
            find_filters=_PERSON_FILTERS,
            find_columns=CONTACT_COLUMNS,
        ),
        "account": ObjectModel(
            object="account",
            sobject="Account",
            name_fields=("Name",),
            phone_field="Phone",
            required=(RequiredField("Name", source="name"),),
            find_filters=MappingProxyType(
                {"name": "Name", "phone": "Phone", "description": "Description"}
            ),
            find_columns=(_col("id", "Id", "id"), _col("name", "Name")),
            find_after_query=frozenset({"description"}),
        ),
        "opportunity": ObjectModel(
            object="opportunity",
            sobject="Opportunity",
            name_fields=("Name",),
            phone_field=None,
            required=(
                RequiredField("Name", source="name"),
                RequiredField(
                    "StageName",
                    default=lambda _today: OPPORTUNITY_STAGE,
                    default_doc=f'"{OPPORTUNITY_STAGE}"',
                ),
                RequiredField(
                    "CloseDate",
                    default=_close_date,
                    default_doc=f"today (UTC) + {OPPORTUNITY_CLOSE_DAYS} days",
                ),
            ),
            find_filters=MappingProxyType({"name": "Name"}),
            find_columns=OPPORTUNITY_COLUMNS,
        ),
        "case": ObjectModel(
            object="case",
            sobject="Case",
            name_fields=("Subject",),
            phone_field=None,
            required=(),  # Status is defaulted on create; Origin is required by layouts only
            find_filters=MappingProxyType({"case_number": "CaseNumber"}),
            find_columns=CASE_COLUMNS,
            deletable=True,
        ),
        "campaign": ObjectModel(
            object="campaign",
            sobject="Campaign",
            name_fields=("Name",),
            phone_field=None,
            required=(RequiredField("Name", source="name"),),
            find_filters=MappingProxyType({"name": "Name"}),
            find_columns=(_col("id", "Id", "id"), _col("name", "Name"), _col("status", "Status")),
        ),
    }
)
