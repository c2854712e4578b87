"""Find: the query it sends, the record it picks, and what it does with none or many."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.actions import ActionInput
from pipeline.catalogue import (
    ACTIONS,
    FIND,
    AmbiguousMatch,
    InvalidInput,
    MissingInput,
    NoMatch,
    UnknownAction,
    execute,
    validate_options,
)
from pipeline.catalogue.executors import SCAN_LIMIT
from tests.pipeline.catalogue_fakes import FakeSalesforce, parse_query


def find(object_: str, options: dict[str, Any] | None = None, **inputs: Any) -> ActionInput:
    return ActionInput(kind=FIND, object=object_, inputs=inputs, options=options or {})


@pytest.fixture
def sf() -> FakeSalesforce:
    return FakeSalesforce()


LEAD = {
    "FirstName": "Ada",
    "LastName": "Lovelace",
    "Name": "Ada Lovelace",
    "Email": "ada@engines.example",
    "Phone": "+44 20",
    "MobilePhone": None,
    "Company": "Engines",
    "Title": "Countess",
    "Status": "Open - Not Contacted",
    "LeadSource": "Web",
    "Rating": "Hot",
    "Industry": "Technology",
    "IsConverted": False,
    "ConvertedAccountId": None,
    "ConvertedContactId": None,
    "ConvertedOpportunityId": None,
    "OwnerId": "005000000000001AAA",
    "Description": "wants a demo",
}


async def test_find_lead_returns_full_lead_metadata(sf: FakeSalesforce) -> None:
    """Every lead output is read from its Salesforce field, under its snake_case name."""
    lead_id = sf.add("Lead", **LEAD)
    result = await execute(find("lead", email="ada@engines.example"), sf)
    record = sf.record("Lead", lead_id)
    assert result.matched
    assert result.salesforce_id == lead_id
    assert result.outputs == {
        "id": lead_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name": "Ada Lovelace",
        "email": "ada@engines.example",
        "phone": "+44 20",
        "mobile_phone": None,
        "company": "Engines",
        "title": "Countess",
        "status": "Open - Not Contacted",
        "lead_source": "Web",
        "rating": "Hot",
        "industry": "Technology",
        "is_converted": False,
        "converted_account_id": None,
        "converted_contact_id": None,
        "converted_opportunity_id": None,
        "owner_id": "005000000000001AAA",
        "created_date": record["CreatedDate"],
        "last_modified_date": record["LastModifiedDate"],
        "description": "wants a demo",
    }


FIND_CASES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = {
    # object: (stored record, find inputs, expected outputs other than id and timestamps)
    "contact": (
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Email": "ada@x.example",
            "AccountId": "001000000000009AAA",
            "Department": "R&D",
        },
        {"first_name": "ada", "last_name": "LOVELACE"},
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@x.example",
            "account_id": "001000000000009AAA",
            "department": "R&D",
        },
    ),
    "account": (
        {"Name": "Acme", "Phone": "555"},
        {"name": "acme", "phone": "555"},
        {"name": "Acme"},
    ),
    "opportunity": (
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "Amount": 1200.5,
            "Probability": 10,
            "CloseDate": "2026-12-25",
            "IsWon": False,
            "ForecastCategoryName": "Pipeline",
        },
        {"name": "Deal"},
        {
            "name": "Deal",
            "stage_name": "Prospecting",
            "amount": 1200.5,
            "probability": 10,
            "close_date": "2026-12-25",
            "is_won": False,
            "forecast_category": "Pipeline",
        },
    ),
    "case": (
        {
            "CaseNumber": "00001026",
            "Subject": "Printer",
            "Status": "New",
            "Priority": "High",
            "IsClosed": False,
        },
        {"case_number": "00001026"},
        {
            "case_number": "00001026",
            "subject": "Printer",
            "status": "New",
            "priority": "High",
            "is_closed": False,
        },
    ),
    "campaign": (
        {"Name": "Webinar", "Status": "Planned"},
        {"name": "webinar"},
        {"name": "Webinar", "status": "Planned"},
    ),
}


@pytest.mark.parametrize("object_", sorted(FIND_CASES))
async def test_find_each_object(sf: FakeSalesforce, object_: str) -> None:
    """Find matches on the seed's inputs and outputs exactly the spec's fields."""
    stored, inputs, expected = FIND_CASES[object_]
    record_id = sf.add(object_.capitalize(), **stored)
    result = await execute(find(object_, **inputs), sf)
    assert set(result.outputs) == set(ACTIONS[FIND, object_].outputs)
    assert result.outputs["id"] == record_id
    assert expected.items() <= result.outputs.items()


async def test_query_filters_on_the_given_inputs_only(sf: FakeSalesforce) -> None:
    """Blank and absent inputs add no condition; the query asks for two rows, oldest first."""
    await execute(find("lead", first_name="Ada", last_name=" ", email=None), sf)
    (soql,) = [c[1] for c in sf.calls]
    parsed = parse_query(soql)
    assert parsed.sobject == "Lead"
    assert parsed.where == (("FirstName", "Ada"),)
    assert parsed.limit == 2
    assert soql.endswith("ORDER BY CreatedDate ASC, Id ASC LIMIT 2")


async def test_email_matches_case_insensitively(sf: FakeSalesforce) -> None:
    """Email is compared as Salesforce's = does, ignoring case."""
    contact_id = sf.add("Contact", LastName="Lovelace", Email="Ada@Engines.example")
    result = await execute(find("contact", email="ada@ENGINES.example"), sf)
    assert result.outputs["id"] == contact_id


async def test_a_value_with_quotes_is_matched_literally(sf: FakeSalesforce) -> None:
    """A quote in an input is part of the value, never SOQL."""
    sf.add("Account", Name="Other")
    bobs = sf.add("Account", Name="Bob's BBQ")
    result = await execute(find("account", name="Bob's BBQ"), sf)
    assert result.outputs == {"id": bobs, "name": "Bob's BBQ"}
    injected = await execute(find("account", name="x' OR Name != '"), sf)
    assert not injected.matched


async def test_find_needs_at_least_one_input(sf: FakeSalesforce) -> None:
    """A find with no usable input would match everything: it is refused, naming the inputs."""
    with pytest.raises(MissingInput, match="needs at least one of: first_name, last_name, email"):
        await execute(find("lead", email="  "), sf)
    assert sf.calls == []


async def test_no_match_gives_null_outputs_by_default(sf: FakeSalesforce) -> None:
    """on_no_match defaults to empty: every output is null and matched is False."""
    result = await execute(find("opportunity", name="nothing"), sf)
    assert not result.matched
    assert result.salesforce_id is None
    assert result.outputs == dict.fromkeys(ACTIONS[FIND, "opportunity"].outputs)


async def test_no_match_can_fail(sf: FakeSalesforce) -> None:
    """on_no_match=fail raises NoMatch, naming the criteria."""
    with pytest.raises(NoMatch, match="no Case matches case_number='00009999'"):
        await execute(find("case", {"on_no_match": "fail"}, case_number="00009999"), sf)


async def test_many_matches_pick_the_oldest(sf: FakeSalesforce) -> None:
    """on_many_matches defaults to first: the record created first wins."""
    oldest = sf.add("Lead", LastName="Dup", Email="d@x.example")
    sf.add("Lead", LastName="Dup", Email="d@x.example")
    result = await execute(find("lead", email="d@x.example"), sf)
    assert result.outputs["id"] == oldest


async def test_same_second_ties_break_on_id(sf: FakeSalesforce) -> None:
    """Records created in the same second are ordered by Id, so the pick is stable."""
    stamp = "2026-01-01T00:00:00.000+0000"
    sf.records["Campaign"] = {
        "701000000000002AAA": {"Id": "701000000000002AAA", "Name": "C", "CreatedDate": stamp},
        "701000000000001AAA": {"Id": "701000000000001AAA", "Name": "C", "CreatedDate": stamp},
    }
    result = await execute(find("campaign", name="c"), sf)
    assert result.outputs["id"] == "701000000000001AAA"


async def test_many_matches_can_fail(sf: FakeSalesforce) -> None:
    """on_many_matches=fail raises AmbiguousMatch when two records match."""
    sf.add("Contact", LastName="Dup")
    sf.add("Contact", LastName="Dup")
    with pytest.raises(AmbiguousMatch, match="more than one Contact matches last_name='Dup'"):
        await execute(find("contact", {"on_many_matches": "fail"}, last_name="Dup"), sf)


async def test_one_match_passes_the_strict_policies(sf: FakeSalesforce) -> None:
    """With both policies set to fail, exactly one match still succeeds."""
    sf.add("Opportunity", Name="Only")
    strict = {"on_no_match": "fail", "on_many_matches": "fail"}
    assert (await execute(find("opportunity", strict, name="only"), sf)).matched


# -- account description: a long text area --------------------------------------------------


async def test_account_description_is_compared_after_the_query(sf: FakeSalesforce) -> None:
    """Salesforce cannot filter on Description, so find queries by name and compares it after."""
    sf.add("Account", Name="Acme", Description="West branch")
    east = sf.add("Account", Name="Acme", Description="East branch")
    result = await execute(find("account", name="Acme", description="east BRANCH"), sf)
    assert result.outputs == {"id": east, "name": "Acme"}
    parsed = parse_query(sf.calls[0][1])
    assert parsed.where == (("Name", "Acme"),)
    assert "Description" in parsed.fields
    assert parsed.limit == SCAN_LIMIT + 1


async def test_account_description_alone_is_refused(sf: FakeSalesforce) -> None:
    """Description alone cannot be searched; the error says to add name or phone."""
    with pytest.raises(
        MissingInput, match=r"cannot filter on Account\.Description.*give one of name, phone"
    ):
        await execute(find("account", description="East branch"), sf)


async def test_account_description_without_a_match(sf: FakeSalesforce) -> None:
    """Candidates whose description differs are not matches."""
    sf.add("Account", Name="Acme", Description="West branch")
    result = await execute(find("account", name="Acme", description="North"), sf)
    assert not result.matched


async def test_too_many_candidates_for_description_is_ambiguous(sf: FakeSalesforce) -> None:
    """Past the scan limit, a find that found nothing in the scanned rows cannot say 'none'."""
    for _ in range(SCAN_LIMIT + 1):
        sf.add("Account", Name="Acme", Description="other")
    with pytest.raises(
        AmbiguousMatch, match=f"more than {SCAN_LIMIT} records match the other inputs"
    ):
        await execute(find("account", name="Acme", description="East"), sf)


async def test_first_match_within_the_scan_is_the_oldest_overall(sf: FakeSalesforce) -> None:
    """With on_many_matches=first a match among the oldest candidates is still the answer."""
    first = sf.add("Account", Name="Acme", Description="East")
    for _ in range(SCAN_LIMIT + 1):
        sf.add("Account", Name="Acme", Description="other")
    result = await execute(find("account", name="Acme", description="East"), sf)
    assert result.outputs["id"] == first


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_no_match": "skip"}, "on_no_match must be one of 'empty', 'fail', not 'skip'"),
        ({"on_many_matches": "last"}, "on_many_matches must be one of 'first', 'fail', not 'last'"),
    ],
)
async def test_bad_policy_is_refused(
    sf: FakeSalesforce, options: dict[str, Any], message: str
) -> None:
    """A misspelt policy fails the step instead of silently using the default."""
    with pytest.raises(InvalidInput, match=message):
        await execute(find("lead", options, email="a@b.c"), sf)
    assert sf.calls == []


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        (FIND, {"on_no_match": "nope"}),
        ("salesforce.create_record", {"external_id_field": "Bad Field"}),
        ("salesforce.create_record", {"defaults": ["Company"]}),
        ("salesforce.create_record", {"defaults": {"Company; x": 1}}),
        ("salesforce.create_record", {"today": "tomorrow"}),
        ("salesforce.convert_lead", {"converted_status": ""}),
    ],
)
def test_validate_options_rejects_bad_values(kind: str, options: dict[str, Any]) -> None:
    """The flow validator can check a step's catalogue options at load time."""
    with pytest.raises(InvalidInput):
        validate_options(kind, options)


def test_validate_options_accepts_good_values_and_ignores_other_keys() -> None:
    """Valid values pass, and keys the catalogue does not read are left to their owner."""
    validate_options(FIND, {"on_no_match": "fail", "on_many_matches": "first", "retry": 3})
    validate_options(
        "salesforce.create_record",
        {"external_id_field": "Key__c", "defaults": {"Company": None}, "today": "2026-01-31"},
    )
    validate_options("salesforce.convert_lead", {"converted_status": "Closed - Converted"})


def test_validate_options_names_an_unknown_kind() -> None:
    """Options of a kind the catalogue does not know are an unknown action."""
    with pytest.raises(UnknownAction, match=r"unknown action 'salesforce\.merge'"):
        validate_options("salesforce.merge", {})
