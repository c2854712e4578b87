"""The emulated org's object metadata, as plain data: the ten objects, their fields and picklists.

Field lengths, required flags and key prefixes follow the Salesforce Field Reference for a fresh
Developer Edition org (see docs/emulator.md for the handful that are guesses). ``describe.py`` turns
this data into DescribeSObjectResult JSON; ``validation.py`` enforces it on writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .ids import KEY_PREFIXES


@dataclass(frozen=True)
class FieldSpec:
    """One field as describe reports it. ``required`` is the client convention for create."""

    name: str
    type: str  # id string textarea email phone url picklist boolean date datetime double
    label: str = ""  # currency percent int reference
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    default: Any = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    auto_number: bool = False
    calculated: bool = False
    custom: bool = False

    @property
    def required(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted_on_create

    @property
    def display_label(self) -> str:
        return self.label or _label_from_name(self.name)


@dataclass(frozen=True)
class ObjectSpec:
    """One sObject: its name, key prefix, CRUD abilities and fields in describe order."""

    name: str
    label: str
    label_plural: str
    fields: tuple[FieldSpec, ...]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    key_prefix: str = ""
    _by_lower: Mapping[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_prefix", KEY_PREFIXES[self.name])
        object.__setattr__(self, "_by_lower", {f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name``, case-insensitively (as the API matches names)."""
        return self._by_lower.get(name.lower())

    def by_relationship(self, name: str) -> FieldSpec | None:
        """The reference field whose relationship name is ``name`` (``Owner`` -> ``OwnerId``)."""
        lowered = name.lower()
        for f in self.fields:
            if f.relationship_name and f.relationship_name.lower() == lowered:
                return f
        return None


def _label_from_name(name: str) -> str:
    base = name.removesuffix("__c").removesuffix("Id") if name != "Id" else "Record ID"
    words, current = [], ""
    for ch in base.replace("_", " "):
        if ch.isupper() and current and not current[-1].isupper() and current[-1] != " ":
            words.append(current)
            current = ch
        else:
            current += ch
    words.append(current)
    label = " ".join(w.strip() for w in words if w.strip())
    return label + (" ID" if name.endswith("Id") and name != "Id" else "")


def _s(name: str, length: int, **kw: Any) -> FieldSpec:
    return FieldSpec(name, "string", length=length, **kw)


def _pick(name: str, values: tuple[str, ...], **kw: Any) -> FieldSpec:
    return FieldSpec(name, "picklist", length=255, picklist=values, **kw)


def _ref(name: str, target: str, rel: str, **kw: Any) -> FieldSpec:
    return FieldSpec(
        name, "reference", length=18, reference_to=(target,), relationship_name=rel, **kw
    )


def _ro(spec: FieldSpec) -> FieldSpec:
    return replace(spec, createable=False, updateable=False)


_ID = FieldSpec(
    "Id",
    "id",
    label="Record ID",
    length=18,
    nillable=False,
    createable=False,
    updateable=False,
    defaulted_on_create=True,
)
_SYSTEM = (
    _ro(FieldSpec("CreatedDate", "datetime", nillable=False, defaulted_on_create=True)),
    _ro(_ref("CreatedById", "User", "CreatedBy", nillable=False, defaulted_on_create=True)),
    _ro(FieldSpec("LastModifiedDate", "datetime", nillable=False, defaulted_on_create=True)),
    _ro(
        _ref("LastModifiedById", "User", "LastModifiedBy", nillable=False, defaulted_on_create=True)
    ),
    _ro(FieldSpec("SystemModstamp", "datetime", nillable=False, defaulted_on_create=True)),
)
_IS_DELETED = _ro(
    FieldSpec(
        "IsDeleted",
        "boolean",
        label="Deleted",
        nillable=False,
        defaulted_on_create=True,
        default=False,
    )
)
_OWNER = _ref("OwnerId", "User", "Owner", nillable=False, defaulted_on_create=True)
_SALUTATION = _pick("Salutation", ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx."))
_LEAD_SOURCE = _pick(
    "LeadSource", ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
)
_INDUSTRY = _pick(
    "Industry",
    (
        "Agriculture",
        "Banking",
        "Communications",
        "Education",
        "Healthcare",
        "Manufacturing",
        "Retail",
        "Technology",
        "Other",
    ),
)
_DESCRIPTION = FieldSpec("Description", "textarea", length=32000)
_PHONE = FieldSpec("Phone", "phone", length=40)
_MOBILE = FieldSpec("MobilePhone", "phone", label="Mobile Phone", length=40)
_EMAIL = FieldSpec("Email", "email", length=80)
_WEBSITE = FieldSpec("Website", "url", length=255)
_REVENUE = FieldSpec("AnnualRevenue", "currency", label="Annual Revenue")
_EMPLOYEES = FieldSpec("NumberOfEmployees", "int", label="Employees")
_NAME_CALC = _ro(_s("Name", 121, label="Full Name", calculated=True))

LEAD_STATUSES = (
    # (label, is_converted, is_default)
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Closed - Converted", True, False),
    ("Closed - Not Converted", False, False),
)
OPPORTUNITY_STAGES = (
    # (stage, probability, is_closed, is_won)
    ("Prospecting", 10, False, False),
    ("Qualification", 10, False, False),
    ("Needs Analysis", 20, False, False),
    ("Value Proposition", 50, False, False),
    ("Id. Decision Makers", 60, False, False),
    ("Perception Analysis", 70, False, False),
    ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
)


def _address(prefix: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(f"{prefix}Street", "textarea", length=255),
        _s(f"{prefix}City", 40),
        _s(f"{prefix}State", 80),
        _s(f"{prefix}PostalCode", 20, label=f"{prefix} Zip/Postal Code".strip()),
        _s(f"{prefix}Country", 80),
    )


def _objects() -> tuple[ObjectSpec, ...]:
    lead = ObjectSpec(
        "Lead",
        "Lead",
        "Leads",
        (
            _ID,
            _IS_DELETED,
            _s("LastName", 80, label="Last Name", nillable=False),
            _s("FirstName", 40, label="First Name"),
            _SALUTATION,
            _NAME_CALC,
            _s("Title", 128),
            _s("Company", 255, nillable=False),
            *_address(""),
            _PHONE,
            _MOBILE,
            _EMAIL,
            _WEBSITE,
            _DESCRIPTION,
            _LEAD_SOURCE,
            _pick(
                "Status",
                tuple(s[0] for s in LEAD_STATUSES),
                nillable=False,
                restricted=True,
                defaulted_on_create=True,
                default="Open - Not Contacted",
            ),
            _INDUSTRY,
            _pick("Rating", ("Hot", "Warm", "Cold")),
            _REVENUE,
            _EMPLOYEES,
            _OWNER,
            _ro(
                FieldSpec(
                    "IsConverted",
                    "boolean",
                    label="Converted",
                    nillable=False,
                    defaulted_on_create=True,
                    default=False,
                )
            ),
            _ro(FieldSpec("ConvertedDate", "date", label="Converted Date")),
            _ro(_ref("ConvertedAccountId", "Account", "ConvertedAccount")),
            _ro(_ref("ConvertedContactId", "Contact", "ConvertedContact")),
            _ro(_ref("ConvertedOpportunityId", "Opportunity", "ConvertedOpportunity")),
            FieldSpec(
                "IsUnreadByOwner",
                "boolean",
                label="Unread By Owner",
                nillable=False,
                defaulted_on_create=True,
                default=True,
            ),
            *_SYSTEM,
        ),
    )
    contact = ObjectSpec(
        "Contact",
        "Contact",
        "Contacts",
        (
            _ID,
            _IS_DELETED,
            _ref("AccountId", "Account", "Account"),
            _s("LastName", 80, label="Last Name", nillable=False),
            _s("FirstName", 40, label="First Name"),
            _SALUTATION,
            _NAME_CALC,
            *_address("Mailing"),
            _PHONE,
            _MOBILE,
            _EMAIL,
            _s("Title", 128),
            _s("Department", 80),
            _LEAD_SOURCE,
            _DESCRIPTION,
            _OWNER,
            *_SYSTEM,
        ),
    )
    account = ObjectSpec(
        "Account",
        "Account",
        "Accounts",
        (
            _ID,
            _IS_DELETED,
            _s("Name", 255, label="Account Name", nillable=False),
            _pick(
                "Type",
                (
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Channel Partner / Reseller",
                    "Installation Partner",
                    "Technology Partner",
                    "Other",
                ),
                label="Account Type",
            ),
            *_address("Billing"),
            _PHONE,
            _WEBSITE,
            _INDUSTRY,
            _REVENUE,
            _EMPLOYEES,
            _s("AccountNumber", 40, label="Account Number"),
            _DESCRIPTION,
            _OWNER,
            *_SYSTEM,
        ),
    )
    opportunity = ObjectSpec(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        (
            _ID,
            _IS_DELETED,
            _ref("AccountId", "Account", "Account"),
            _s("Name", 120, nillable=False),
            _DESCRIPTION,
            _pick(
                "StageName",
                tuple(s[0] for s in OPPORTUNITY_STAGES),
                label="Stage",
                nillable=False,
                restricted=True,
            ),
            FieldSpec("Amount", "currency"),
            FieldSpec("Probability", "percent", label="Probability (%)", defaulted_on_create=True),
            FieldSpec("CloseDate", "date", label="Close Date", nillable=False),
            _pick(
                "Type",
                (
                    "Existing Customer - Upgrade",
                    "Existing Customer - Replacement",
                    "Existing Customer - Downgrade",
                    "New Customer",
                ),
                label="Opportunity Type",
            ),
            _s("NextStep", 255, label="Next Step"),
            _LEAD_SOURCE,
            _ro(
                FieldSpec(
                    "IsClosed",
                    "boolean",
                    label="Closed",
                    nillable=False,
                    defaulted_on_create=True,
                    default=False,
                )
            ),
            _ro(
                FieldSpec(
                    "IsWon",
                    "boolean",
                    label="Won",
                    nillable=False,
                    defaulted_on_create=True,
                    default=False,
                )
            ),
            _OWNER,
            *_SYSTEM,
        ),
    )
    case = ObjectSpec(
        "Case",
        "Case",
        "Cases",
        (
            _ID,
            _IS_DELETED,
            _ro(
                _s(
                    "CaseNumber",
                    30,
                    label="Case Number",
                    nillable=False,
                    defaulted_on_create=True,
                    auto_number=True,
                )
            ),
            _ref("ContactId", "Contact", "Contact"),
            _ref("AccountId", "Account", "Account"),
            _s("SuppliedName", 80, label="Name"),
            FieldSpec("SuppliedEmail", "email", label="Email Address", length=80),
            _s("SuppliedPhone", 40, label="Phone"),
            _pick(
                "Type",
                ("Mechanical", "Electrical", "Electronic", "Structural", "Other"),
                label="Case Type",
            ),
            _pick(
                "Status",
                ("New", "Working", "Escalated", "Closed"),
                nillable=False,
                restricted=True,
                defaulted_on_create=True,
                default="New",
            ),
            _pick(
                "Reason",
                (
                    "Installation",
                    "Equipment Complexity",
                    "Performance",
                    "Breakdown",
                    "Equipment Design",
                    "Feedback",
                    "Other",
                ),
                label="Case Reason",
            ),
            _pick("Origin", ("Phone", "Email", "Web"), label="Case Origin"),
            _s("Subject", 255),
            _pick(
                "Priority", ("High", "Medium", "Low"), defaulted_on_create=True, default="Medium"
            ),
            _DESCRIPTION,
            _ro(
                FieldSpec(
                    "IsClosed",
                    "boolean",
                    label="Closed",
                    nillable=False,
                    defaulted_on_create=True,
                    default=False,
                )
            ),
            _ro(FieldSpec("ClosedDate", "datetime", label="Closed Date")),
            FieldSpec(
                "IsEscalated",
                "boolean",
                label="Escalated",
                nillable=False,
                defaulted_on_create=True,
                default=False,
            ),
            _OWNER,
            *_SYSTEM,
        ),
    )
    campaign = ObjectSpec(
        "Campaign",
        "Campaign",
        "Campaigns",
        (
            _ID,
            _IS_DELETED,
            _s("Name", 80, nillable=False),
            _pick(
                "Type",
                (
                    "Conference",
                    "Webinar",
                    "Trade Show",
                    "Public Relations",
                    "Partners",
                    "Referral Program",
                    "Advertisement",
                    "Banner Ads",
                    "Direct Mail",
                    "Email",
                    "Telemarketing",
                    "Other",
                ),
            ),
            _pick(
                "Status",
                ("Planned", "In Progress", "Completed", "Aborted"),
                defaulted_on_create=True,
                default="Planned",
            ),
            FieldSpec("StartDate", "date", label="Start Date"),
            FieldSpec("EndDate", "date", label="End Date"),
            FieldSpec("ExpectedRevenue", "currency", label="Expected Revenue in Campaign"),
            FieldSpec("BudgetedCost", "currency", label="Budgeted Cost in Campaign"),
            FieldSpec(
                "IsActive",
                "boolean",
                label="Active",
                nillable=False,
                defaulted_on_create=True,
                default=False,
            ),
            _DESCRIPTION,
            _ro(FieldSpec("NumberOfLeads", "int", label="Leads in Campaign")),
            _OWNER,
            *_SYSTEM,
        ),
    )
    member = ObjectSpec(
        "CampaignMember",
        "Campaign Member",
        "Campaign Members",
        (
            _ID,
            _IS_DELETED,
            replace(_ref("CampaignId", "Campaign", "Campaign", nillable=False), updateable=False),
            replace(_ref("LeadId", "Lead", "Lead"), updateable=False),
            replace(_ref("ContactId", "Contact", "Contact"), updateable=False),
            _pick("Status", ("Sent", "Responded"), defaulted_on_create=True, default="Sent"),
            _ro(
                FieldSpec(
                    "HasResponded",
                    "boolean",
                    label="Responded",
                    nillable=False,
                    defaulted_on_create=True,
                    default=False,
                )
            ),
            *_SYSTEM,
        ),
    )
    lead_status = ObjectSpec(
        "LeadStatus",
        "Lead Status Value",
        "Lead Status Values",
        (
            _ID,
            _s("MasterLabel", 255, label="Master Label"),
            _s("ApiName", 255, label="Api Name"),
            FieldSpec("SortOrder", "int", label="Sort Order"),
            FieldSpec("IsDefault", "boolean", label="Is Default", nillable=False),
            FieldSpec("IsConverted", "boolean", label="Is Converted", nillable=False),
            *_SYSTEM,
        ),
        createable=False,
        updateable=False,
        deletable=False,
    )
    user = ObjectSpec(
        "User",
        "User",
        "Users",
        (
            _ID,
            _s("Username", 80, nillable=False),
            _s("LastName", 80, label="Last Name", nillable=False),
            _s("FirstName", 40, label="First Name"),
            _NAME_CALC,
            _EMAIL,
            _s("Alias", 8),
            FieldSpec("IsActive", "boolean", label="Active", nillable=False),
            _s("TimeZoneSidKey", 40, label="Time Zone"),
            _s("LocaleSidKey", 40, label="Locale"),
            _s("LanguageLocaleKey", 40, label="Language"),
            _s("UserType", 40, label="User Type"),
            *_SYSTEM,
        ),
        createable=False,
        updateable=False,
        deletable=False,
    )
    org = ObjectSpec(
        "Organization",
        "Organization",
        "Organizations",
        (
            _ID,
            _s("Name", 80),
            _s("InstanceName", 5, label="Instance Name"),
            FieldSpec("IsSandbox", "boolean", label="Is Sandbox", nillable=False),
            _s("OrganizationType", 40, label="Edition"),
            _s("NamespacePrefix", 15),
            _s("TimeZoneSidKey", 40, label="Default Time Zone"),
            _s("LanguageLocaleKey", 40, label="Language"),
            *_SYSTEM,
        ),
        createable=False,
        updateable=False,
        deletable=False,
    )
    return (lead, contact, account, opportunity, case, campaign, member, lead_status, user, org)


def build_schema(external_id_fields: Mapping[str, str]) -> dict[str, ObjectSpec]:
    """The org's objects by name, each with its configured external-ID field appended."""
    schema: dict[str, ObjectSpec] = {}
    for spec in _objects():
        ext = external_id_fields.get(spec.name)
        if ext:
            custom = _s(
                ext, 255, label=_label_from_name(ext), external_id=True, unique=True, custom=True
            )
            spec = ObjectSpec(
                spec.name,
                spec.label,
                spec.label_plural,
                (*spec.fields, custom),
                spec.createable,
                spec.updateable,
                spec.deletable,
            )
        schema[spec.name] = spec
    return schema


DEFAULT_EXTERNAL_ID_FIELDS: Mapping[str, str] = dict.fromkeys(
    ("Lead", "Contact", "Account", "Opportunity", "Case", "Campaign"), "Actionflows_Key__c"
)
