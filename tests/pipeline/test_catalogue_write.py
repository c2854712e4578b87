"""Create, update, delete and convert: the fields each sends, and when each refuses."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from pipeline.actions import OBJECTS, ActionInput
from pipeline.catalogue import (
    CONVERT,
    CREATE,
    DELETE,
    UPDATE,
    InvalidInput,
    MissingInput,
    NoMatch,
    UnknownAction,
    UnsupportedObject,
    execute,
)
from pipeline.catalogue.executors import append_marker
from pipeline.ledger import business_key
from pipeline.ports import LeadConversion
from tests.pipeline.catalogue_fakes import (
    FakeNotFound,
    FakeRejected,
    FakeSalesforce,
    FakeUnavailable,
    flow_gateway,
)

TODAY = date(2026, 11, 25)
SOBJECT = {o: o.capitalize() for o in OBJECTS}


def step(
    kind: str, object_: str, extra: dict[str, Any] | None = None, **inputs: Any
) -> ActionInput:
    return ActionInput(kind=kind, object=object_, inputs=inputs, extra_fields=extra or {})


@pytest.fixture
def sf() -> FakeSalesforce:
    return FakeSalesforce()


# -- create ----------------------------------------------------------------------------------

CREATE_CASES = {
    "lead": (
        {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "description": "asked for a demo"},
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Phone": "+44 20 7946 0000",
            "Description": "asked for a demo",
            "Company": "[not provided]",
        },
    ),
    "contact": (
        {"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "description": "VIP"},
        {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Phone": "+44 20 7946 0000",
            "Description": "VIP",
        },
    ),
    "account": (
        {"name": "Analytical Engines Ltd", "phone": "+44 20", "description": "key account"},
        {"Name": "Analytical Engines Ltd", "Phone": "+44 20", "Description": "key account"},
    ),
    "opportunity": (
        {"name": "Engine upgrade", "description": "from ticket 42"},
        {
            "Name": "Engine upgrade",
            "Description": "from ticket 42",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-25",
        },
    ),
    "case": (
        {"name": "Printer on fire", "description": "see ticket 42"},
        {"Subject": "Printer on fire", "Description": "see ticket 42"},
    ),
    "campaign": (
        {"name": "Spring webinar", "description": "signups from support"},
        {"Name": "Spring webinar", "Description": "signups from support"},
    ),
}


@pytest.mark.parametrize("object_", OBJECTS)
async def test_create_maps_the_seed_inputs_and_fills_required_fields(
    sf: FakeSalesforce, object_: str
) -> None:
    """Each object's create sends the mapped fields plus documented defaults, and outputs the id."""
    inputs, fields = CREATE_CASES[object_]
    result = await execute(step(CREATE, object_, **inputs), sf, today=TODAY)
    assert sf.calls == [("create", SOBJECT[object_], fields)]
    record_id = sf.only(SOBJECT[object_])["Id"]
    assert result.outputs == {"id": record_id}
    assert result.salesforce_id == record_id
    assert result.matched


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("Cher", None, "Cher"),
        ("  Ada   Lovelace ", "Ada", "Lovelace"),
        ("Jean de la Fontaine", "Jean de la", "Fontaine"),
    ],
)
async def test_person_name_splits_on_the_last_word(
    sf: FakeSalesforce, name: str, first: str | None, last: str
) -> None:
    """The last word is LastName, the words before it FirstName; one word is LastName alone."""
    await execute(step(CREATE, "contact", name=name), sf)
    assert sf.calls == [("create", "Contact", {"FirstName": first, "LastName": last})]


async def test_extra_fields_override_mapped_fields(sf: FakeSalesforce) -> None:
    """extra_fields are raw Salesforce fields and win over what the seed inputs map to."""
    extra = {
        "FirstName": "Jean",
        "LastName": "de la Fontaine",
        "Company": "Fables SA",
        "Email": "j@f.fr",
    }
    await execute(step(CREATE, "lead", extra, name="Jean de la Fontaine"), sf)
    assert sf.calls[0][2] == extra


async def test_option_defaults_replace_builtin_defaults(sf: FakeSalesforce) -> None:
    """options.defaults set required fields per step, instead of the built-in placeholders."""
    action = ActionInput(
        kind=CREATE,
        object="opportunity",
        inputs={"name": "Deal"},
        options={"defaults": {"StageName": "Qualification", "CloseDate": "2027-01-31"}},
    )
    await execute(action, sf, today=TODAY)
    assert sf.calls[0][2] == {
        "Name": "Deal",
        "StageName": "Qualification",
        "CloseDate": "2027-01-31",
    }


async def test_option_defaults_fill_any_absent_field_but_never_an_input(sf: FakeSalesforce) -> None:
    """A default applies only when neither an input nor an extra field set that field."""
    action = ActionInput(
        kind=CREATE,
        object="lead",
        inputs={"name": "Ada Lovelace"},
        extra_fields={"Company": "Engines"},
        options={
            "defaults": {"LeadSource": "Zendesk", "Company": "ignored", "LastName": "ignored"}
        },
    )
    await execute(action, sf)
    assert sf.calls[0][2] == {
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Company": "Engines",
        "LeadSource": "Zendesk",
    }


async def test_null_default_turns_off_a_builtin_default(sf: FakeSalesforce) -> None:
    """defaults: {Company: null} makes the company mandatory instead of a placeholder."""
    action = ActionInput(
        kind=CREATE, object="lead", inputs={"name": "Ada"}, options={"defaults": {"Company": None}}
    )
    with pytest.raises(MissingInput, match=r"Lead\.Company; give extra_fields\.Company or"):
        await execute(action, sf)
    assert sf.calls == []


async def test_close_date_counts_from_options_today(sf: FakeSalesforce) -> None:
    """Without a today argument, options.today anchors the CloseDate default."""
    action = ActionInput(
        kind=CREATE, object="opportunity", inputs={"name": "Deal"}, options={"today": "2026-02-01"}
    )
    await execute(action, sf)
    assert sf.calls[0][2]["CloseDate"] == "2026-03-03"


async def test_close_date_defaults_to_a_date_from_the_clock(sf: FakeSalesforce) -> None:
    """With no date given at all, the CloseDate default is an ISO date 30 days from now."""
    await execute(step(CREATE, "opportunity", name="Deal"), sf)
    close = date.fromisoformat(sf.calls[0][2]["CloseDate"])
    assert 29 <= (close - date.today()).days <= 31


@pytest.mark.parametrize(
    ("object_", "field"),
    [
        ("lead", "LastName"),
        ("contact", "LastName"),
        ("account", "Name"),
        ("opportunity", "Name"),
        ("campaign", "Name"),
    ],
)
async def test_create_without_a_name_says_which_field_and_how(
    sf: FakeSalesforce, object_: str, field: str
) -> None:
    """A missing required field names the object, the field, and the three ways to give it."""
    with pytest.raises(MissingInput) as caught:
        await execute(step(CREATE, object_, description="no name"), sf, today=TODAY)
    message = str(caught.value)
    assert f"{SOBJECT[object_]}.{field}" in message
    assert "the input name" in message
    assert f"extra_fields.{field}" in message
    assert f"options.defaults.{field}" in message
    assert sf.calls == []


async def test_case_needs_no_field(sf: FakeSalesforce) -> None:
    """A case can be created from nothing: Salesforce defaults its Status."""
    result = await execute(step(CREATE, "case"), sf)
    assert sf.calls == [("create", "Case", {})]
    assert result.outputs["id"].startswith("500")


async def test_blank_inputs_count_as_not_given(sf: FakeSalesforce) -> None:
    """Null and whitespace-only inputs are left out, so a blank name is a missing name."""
    with pytest.raises(MissingInput, match=r"Account\.Name"):
        await execute(step(CREATE, "account", name="   ", phone=None), sf)
    await execute(step(CREATE, "account", name="Acme", phone="", description=None), sf)
    assert sf.calls == [("create", "Account", {"Name": "Acme"})]


async def test_non_string_input_is_rejected(sf: FakeSalesforce) -> None:
    """name, phone and description must be strings; the error names the input."""
    with pytest.raises(InvalidInput, match="input phone must be a string, not int"):
        await execute(step(CREATE, "account", name="Acme", phone=5551234), sf)


@pytest.mark.parametrize("object_", ["opportunity", "case", "campaign"])
async def test_phone_on_an_object_without_phone_is_rejected(
    sf: FakeSalesforce, object_: str
) -> None:
    """Objects with no Phone field have no phone input, and the error says where to put one."""
    with pytest.raises(
        InvalidInput, match=rf"no input phone.*{SOBJECT[object_]} has no Phone field"
    ):
        await execute(step(CREATE, object_, name="x", phone="555"), sf)


@pytest.mark.parametrize(
    "extra", [{"Id": "00Q000000000001AAA"}, {"id": "x"}, {"Name; DELETE": "x"}, {"": 1}]
)
async def test_extra_fields_must_be_field_names_other_than_id(
    sf: FakeSalesforce, extra: dict[str, Any]
) -> None:
    """extra_fields keys are Salesforce API names; Id is never writable."""
    with pytest.raises(InvalidInput, match="extra_fields must be Salesforce field names"):
        await execute(step(CREATE, "account", extra, name="Acme"), sf)


# -- idempotent create -----------------------------------------------------------------------


def keyed_create(key: str | None) -> ActionInput:
    return ActionInput(
        kind=CREATE,
        object="lead",
        inputs={"name": "Ada Lovelace"},
        idempotency_key=key,
        options={"external_id_field": "Actionflows_Key__c"},
    )


async def test_create_with_external_id_is_an_upsert(sf: FakeSalesforce) -> None:
    """With external_id_field and an idempotency key, create upserts by that key."""
    result = await execute(keyed_create("evt-1/flow/step"), sf)
    fields = {"FirstName": "Ada", "LastName": "Lovelace", "Company": "[not provided]"}
    assert sf.calls == [("upsert", "Lead", "Actionflows_Key__c", "evt-1/flow/step", fields)]
    assert result.outputs == {"id": sf.only("Lead")["Id"]}


async def test_redelivered_create_makes_no_second_record(sf: FakeSalesforce) -> None:
    """Running the same keyed create twice leaves one record and outputs the same id."""
    first = await execute(keyed_create("evt-1/flow/step"), sf)
    again = await execute(keyed_create("evt-1/flow/step"), sf)
    assert first.outputs == again.outputs
    assert len(sf.records["Lead"]) == 1


async def test_create_without_idempotency_key_is_a_plain_create(sf: FakeSalesforce) -> None:
    """An external id field with no key (e.g. a manual run) falls back to create."""
    await execute(keyed_create(None), sf)
    assert sf.methods() == ["create"]


async def test_external_id_field_cannot_also_be_set(sf: FakeSalesforce) -> None:
    """The key is the external id's value; setting that field too is a flow error."""
    action = ActionInput(
        kind=CREATE,
        object="account",
        inputs={"name": "Acme"},
        extra_fields={"Actionflows_Key__c": "other"},
        idempotency_key="k",
        options={"external_id_field": "Actionflows_Key__c"},
    )
    with pytest.raises(InvalidInput, match="Actionflows_Key__c is the external id field"):
        await execute(action, sf)
    assert sf.calls == []


# -- one record per business key (unique_by) -------------------------------------------------


def unique_create(key: str | None, name: str = "Ada Lovelace", **options: Any) -> ActionInput:
    return ActionInput(
        kind=CREATE,
        object="lead",
        inputs={"name": name},
        idempotency_key=key,
        unique=True,
        options={"external_id_field": "Actionflows_Key__c", **options},
    )


async def test_a_unique_create_finds_the_record_its_key_already_names(sf: FakeSalesforce) -> None:
    """The first create by a business key makes the record; the next, from another event,
    is refused as a duplicate and returns that record, leaving its fields as they were."""
    key = business_key("lead", "ada@example.com")
    first = await execute(unique_create(key), flow_gateway(sf))
    second = await execute(unique_create(key, name="Ada King"), flow_gateway(sf))
    assert first.outputs == second.outputs
    assert sf.only("Lead")["LastName"] == "Lovelace"
    assert sf.only("Lead")["Actionflows_Key__c"] == key
    assert sf.methods() == ["create", "create", "query"]


async def test_a_unique_create_needs_a_key_and_a_field_to_hold_it(sf: FakeSalesforce) -> None:
    """unique_by that renders empty is MissingInput; with no external id field, InvalidInput."""
    with pytest.raises(MissingInput, match="unique_by is empty"):
        await execute(unique_create(None), flow_gateway(sf))
    nowhere = ActionInput(CREATE, "lead", {"name": "Ada"}, idempotency_key="afu1-k", unique=True)
    with pytest.raises(InvalidInput, match="unique_by needs an external id field"):
        await execute(nowhere, flow_gateway(sf))
    assert sf.calls == []


# -- update ----------------------------------------------------------------------------------

UPDATE_CASES = {
    "lead": (
        {"name": "Ada King", "phone": "1", "description": "d"},
        {"FirstName": "Ada", "LastName": "King", "Phone": "1", "Description": "d"},
    ),
    "contact": (
        {"name": "King", "phone": "1"},
        {"FirstName": None, "LastName": "King", "Phone": "1"},
    ),
    "account": (
        {"name": "Acme", "phone": "1", "description": "d"},
        {"Name": "Acme", "Phone": "1", "Description": "d"},
    ),
    "opportunity": ({"name": "Bigger deal"}, {"Name": "Bigger deal"}),
    "case": (
        {"name": "Re: printer", "description": "note"},
        {"Subject": "Re: printer", "Description": "note"},
    ),
    "campaign": ({"description": "moved online"}, {"Description": "moved online"}),
}


@pytest.mark.parametrize("object_", OBJECTS)
async def test_update_sends_only_what_was_given(sf: FakeSalesforce, object_: str) -> None:
    """Update maps the inputs given, adds no defaults, and outputs the record's id."""
    record_id = sf.add(SOBJECT[object_], Name="old")
    inputs, fields = UPDATE_CASES[object_]
    result = await execute(step(UPDATE, object_, object_id=record_id, **inputs), sf)
    assert sf.calls == [("update", SOBJECT[object_], record_id, fields)]
    assert result.outputs == {"id": record_id}
    assert result.salesforce_id == record_id


async def test_update_with_nothing_to_change_makes_no_call(sf: FakeSalesforce) -> None:
    """No inputs and no extra fields: nothing is sent, and the id is still output."""
    result = await execute(
        step(UPDATE, "case", object_id="500000000000001AAA", name=None, description=" "), sf
    )
    assert sf.calls == []
    assert result.outputs == {"id": "500000000000001AAA"}


async def test_update_with_only_extra_fields(sf: FakeSalesforce) -> None:
    """extra_fields alone are enough to update, e.g. a status change."""
    case_id = sf.add("Case", Status="New")
    await execute(step(UPDATE, "case", {"Status": "Escalated"}, object_id=case_id), sf)
    assert sf.record("Case", case_id)["Status"] == "Escalated"


async def test_update_without_object_id_is_a_flow_error(sf: FakeSalesforce) -> None:
    """Leaving out object_id is a missing input."""
    with pytest.raises(MissingInput, match="needs the input object_id"):
        await execute(step(UPDATE, "lead", name="x"), sf)


@pytest.mark.parametrize(("kind", "object_"), [(UPDATE, "lead"), (DELETE, "case")])
async def test_empty_object_id_means_no_record(sf: FakeSalesforce, kind: str, object_: str) -> None:
    """An object_id that resolved to null (a find that matched nothing) is NoMatch."""
    with pytest.raises(NoMatch, match="object_id is empty"):
        await execute(step(kind, object_, object_id=None), sf)
    assert sf.calls == []


# -- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("object_", ["lead", "case"])
async def test_delete_removes_the_record(sf: FakeSalesforce, object_: str) -> None:
    """Deleting a lead or a case calls delete and outputs nothing."""
    record_id = sf.add(SOBJECT[object_])
    result = await execute(step(DELETE, object_, object_id=record_id), sf)
    assert sf.calls == [("delete", SOBJECT[object_], record_id)]
    assert sf.records[SOBJECT[object_]] == {}
    assert result.outputs == {}
    assert result.salesforce_id == record_id


@pytest.mark.parametrize("object_", ["contact", "account", "opportunity", "campaign"])
async def test_delete_only_leads_and_cases(sf: FakeSalesforce, object_: str) -> None:
    """The seed deletes leads and cases only; other objects are refused before any call."""
    with pytest.raises(UnsupportedObject, match="it supports: case, lead"):
        await execute(step(DELETE, object_, object_id="001000000000001AAA"), sf)
    assert sf.calls == []


async def test_delete_takes_no_extra_fields(sf: FakeSalesforce) -> None:
    """extra_fields mean nothing to a delete and are refused."""
    with pytest.raises(InvalidInput, match="takes no extra_fields"):
        await execute(step(DELETE, "lead", {"Name": "x"}, object_id="00Q000000000001AAA"), sf)


# -- convert ---------------------------------------------------------------------------------


async def test_convert_creates_account_contact_and_opportunity(sf: FakeSalesforce) -> None:
    """Without account_id Salesforce makes an account; outputs name all three records."""
    lead_id = sf.add("Lead", FirstName="Ada", LastName="Lovelace", Company="Engines")
    result = await execute(step(CONVERT, "lead", lead_id=lead_id), sf)
    assert sf.calls == [("convert_lead", LeadConversion(lead_id=lead_id))]
    lead = sf.record("Lead", lead_id)
    assert result.outputs == {
        "opportunity_id": lead["ConvertedOpportunityId"],
        "account_id": lead["ConvertedAccountId"],
        "contact_id": lead["ConvertedContactId"],
    }
    assert result.outputs["opportunity_id"].startswith("006")
    assert result.salesforce_id == lead_id


async def test_convert_into_an_existing_account(sf: FakeSalesforce) -> None:
    """account_id, converted_status and opportunity_name are passed on to the gateway."""
    lead_id = sf.add("Lead", LastName="Lovelace", Company="Engines")
    account_id = sf.add("Account", Name="Engines")
    result = await execute(
        step(
            CONVERT,
            "lead",
            lead_id=lead_id,
            account_id=account_id,
            converted_status="Qualified",
            opportunity_name="Engines - upgrade",
        ),
        sf,
    )
    assert sf.calls[0][1] == LeadConversion(
        lead_id=lead_id,
        account_id=account_id,
        converted_status="Qualified",
        opportunity_name="Engines - upgrade",
    )
    assert result.outputs["account_id"] == account_id


async def test_converted_status_comes_from_options_unless_given(sf: FakeSalesforce) -> None:
    """options.converted_status is the step's default; the input wins over it."""
    options = {"converted_status": "Closed - Converted"}
    first = sf.add("Lead", LastName="A", Company="C")
    second = sf.add("Lead", LastName="B", Company="C")
    await execute(
        ActionInput(kind=CONVERT, object="lead", inputs={"lead_id": first}, options=options), sf
    )
    await execute(
        ActionInput(
            kind=CONVERT,
            object="lead",
            inputs={"lead_id": second, "converted_status": "Won"},
            options=options,
        ),
        sf,
    )
    assert [c[1].converted_status for c in sf.calls] == ["Closed - Converted", "Won"]


async def test_convert_implies_the_lead_object(sf: FakeSalesforce) -> None:
    """A convert step may leave object empty: leads are the only thing it converts."""
    lead_id = sf.add("Lead", LastName="A", Company="C")
    await execute(ActionInput(kind=CONVERT, object="", inputs={"lead_id": lead_id}), sf)
    assert sf.methods() == ["convert_lead"]


async def test_convert_with_no_lead_is_no_match(sf: FakeSalesforce) -> None:
    """A lead_id that resolved to null means there is no lead to convert."""
    with pytest.raises(NoMatch, match="lead_id is empty"):
        await execute(step(CONVERT, "lead", lead_id=None), sf)


# -- gateway errors --------------------------------------------------------------------------

GATEWAY_CALLS = [
    ("create", step(CREATE, "account", name="Acme")),
    (
        "upsert",
        ActionInput(
            CREATE,
            "account",
            {"name": "A"},
            idempotency_key="k",
            options={"external_id_field": "K__c"},
        ),
    ),
    ("update", step(UPDATE, "account", object_id="001000000000001AAA", name="Acme")),
    ("delete", step(DELETE, "lead", object_id="00Q000000000001AAA")),
    ("query", step("salesforce.find_record", "lead", email="a@b.c")),
    ("convert_lead", step(CONVERT, "lead", lead_id="00Q000000000001AAA")),
]


@pytest.mark.parametrize(("method", "action"), GATEWAY_CALLS, ids=[m for m, _ in GATEWAY_CALLS])
@pytest.mark.parametrize("error_class", [FakeUnavailable, FakeRejected])
async def test_gateway_errors_pass_through_unchanged(
    sf: FakeSalesforce, method: str, action: ActionInput, error_class: type[Exception]
) -> None:
    """Whatever the gateway raises reaches the engine as the same object, to be classified."""
    error = error_class("boom", error_code="X")
    sf.failures[method] = error
    with pytest.raises(error_class) as caught:
        await execute(action, sf)
    assert caught.value is error


async def test_not_found_from_salesforce_is_not_rewritten(sf: FakeSalesforce) -> None:
    """Updating a record that does not exist surfaces the gateway's own error."""
    with pytest.raises(FakeNotFound):
        await execute(step(UPDATE, "lead", object_id="00Q000000000009AAA", name="x"), sf)


async def test_null_required_extra_field_still_gets_its_default(sf: FakeSalesforce) -> None:
    """A templated extra field that came out null counts as absent and is defaulted."""
    await execute(step(CREATE, "lead", {"Company": None}, name="Ada"), sf)
    assert sf.calls[0][2]["Company"] == "[not provided]"


async def test_execute_refuses_an_unknown_kind_before_any_call(sf: FakeSalesforce) -> None:
    """An action the catalogue does not know never reaches the gateway."""
    with pytest.raises(UnknownAction):
        await execute(step("salesforce.merge_records", "lead", object_id="x"), sf)
    with pytest.raises(UnsupportedObject, match="'widget'"):
        await execute(step(CREATE, "widget", name="x"), sf)
    assert sf.calls == []


# -- append ------------------------------------------------------------------------------------


def note(contact: str, text: Any, **extra: Any) -> ActionInput:
    return ActionInput(
        kind=UPDATE,
        object="contact",
        inputs={"object_id": contact},
        extra_fields=extra,
        idempotency_key="af1-abcdefghijklmnop",
        appends={"Description": text},
    )


async def test_append_adds_a_line_ending_in_the_event_marker(sf: FakeSalesforce) -> None:
    """The text, trimmed, goes on its own line after what was there, with the marker; fields
    given beside it are set in the same write."""
    contact = sf.add("Contact", LastName="Lovelace", Description="VIP")
    action = note(contact, "  called back  ", Title="CEO")
    result = await execute(action, flow_gateway(sf))
    marker = append_marker("af1-abcdefghijklmnop")
    assert marker == "[af:abcdefghij]"
    record = sf.record("Contact", contact)
    assert record["Description"] == f"VIP\ncalled back {marker}"
    assert record["Title"] == "CEO"
    assert result.outputs == {"id": contact}
    await execute(action, flow_gateway(sf))  # the same event again: nothing added
    assert sf.record("Contact", contact)["Description"] == f"VIP\ncalled back {marker}"


async def test_a_blank_append_is_no_append(sf: FakeSalesforce) -> None:
    """An append that renders blank sends the other fields as a plain update, or nothing."""
    contact = sf.add("Contact", LastName="Lovelace", Description="VIP")
    blank = ActionInput(UPDATE, "contact", {"object_id": contact}, {"Title": "CEO"},
                        idempotency_key="af1-k", appends={"Description": "  "})  # fmt: skip
    await execute(blank, flow_gateway(sf))
    assert sf.methods() == ["update"]
    assert sf.record("Contact", contact)["Description"] == "VIP"


async def test_append_only_on_update(sf: FakeSalesforce) -> None:
    """An append on another kind is refused before any call."""
    action = ActionInput(CREATE, "lead", {"name": "Ada"}, appends={"Description": "x"})
    with pytest.raises(InvalidInput, match="takes no append"):
        await execute(action, flow_gateway(sf))
    assert sf.calls == []
