"""The catalogue's specs: exactly the seed's actions, inputs and outputs."""

from __future__ import annotations

import pytest

from pipeline.actions import OBJECTS
from pipeline.catalogue import (
    ACTIONS,
    CONVERT,
    CREATE,
    DELETE,
    FIND,
    KINDS,
    UPDATE,
    CatalogueError,
    UnknownAction,
    UnsupportedObject,
    get_action,
    objects_for,
)

SEED_FIND_INPUTS = {
    "account": ["name", "phone", "description"],
    "lead": ["first_name", "last_name", "email"],
    "contact": ["first_name", "last_name", "email"],
    "opportunity": ["name"],
    "case": ["case_number"],
    "campaign": ["name"],
}


def test_kinds_are_the_seeds_five_actions() -> None:
    """KINDS names create, update, delete, find and convert, in that order."""
    assert KINDS == (
        "salesforce.create_record",
        "salesforce.update_record",
        "salesforce.delete_record",
        "salesforce.find_record",
        "salesforce.convert_lead",
    )
    assert (CREATE, UPDATE, DELETE, FIND, CONVERT) == KINDS


def test_every_pair_the_seed_names_and_no_other() -> None:
    """Create, update and find cover six objects; delete only leads and cases; convert leads."""
    expected = {(kind, o) for kind in (CREATE, UPDATE, FIND) for o in OBJECTS}
    expected |= {(DELETE, "lead"), (DELETE, "case"), (CONVERT, "lead")}
    assert set(ACTIONS) == expected


@pytest.mark.parametrize("key", sorted(ACTIONS))
def test_spec_is_keyed_by_its_own_kind_and_object(key: tuple[str, str]) -> None:
    """Every spec agrees with its key and names its inputs and outputs by their own name."""
    spec = ACTIONS[key]
    assert (spec.kind, spec.object) == key
    assert spec.sobject == key[1].capitalize()
    assert all(name == field.name for name, field in spec.inputs.items())
    assert all(name == field.name for name, field in spec.outputs.items())
    assert spec.writes == (spec.kind != FIND)


@pytest.mark.parametrize("object_", ["lead", "contact", "account"])
def test_record_inputs_with_phone(object_: str) -> None:
    """Objects with a Phone field take the seed's name, phone and description."""
    assert list(ACTIONS[CREATE, object_].inputs) == ["name", "phone", "description"]
    assert list(ACTIONS[UPDATE, object_].inputs) == ["object_id", "name", "phone", "description"]


@pytest.mark.parametrize("object_", ["opportunity", "case", "campaign"])
def test_no_phone_input_where_salesforce_has_no_phone_field(object_: str) -> None:
    """Opportunity, Case and Campaign have no Phone, so a flow giving phone fails at load time."""
    assert list(ACTIONS[CREATE, object_].inputs) == ["name", "description"]
    assert list(ACTIONS[UPDATE, object_].inputs) == ["object_id", "name", "description"]


@pytest.mark.parametrize("object_", OBJECTS)
def test_create_and_update_output_the_id(object_: str) -> None:
    """Create and update both give the record's id, the only output the seed names."""
    for kind in (CREATE, UPDATE):
        outputs = ACTIONS[kind, object_].outputs
        assert list(outputs) == ["id"]
        assert outputs["id"].type == "id"
        assert outputs["id"].required


def test_update_and_delete_need_the_record_id() -> None:
    """object_id is a required id input wherever a record is changed or deleted."""
    for (kind, _), spec in ACTIONS.items():
        if kind in (UPDATE, DELETE):
            assert spec.inputs["object_id"].type == "id"
            assert spec.inputs["object_id"].required
    assert list(ACTIONS[DELETE, "lead"].inputs) == ["object_id"]
    assert dict(ACTIONS[DELETE, "case"].outputs) == {}


@pytest.mark.parametrize(("object_", "inputs"), sorted(SEED_FIND_INPUTS.items()))
def test_find_inputs_are_the_seeds(object_: str, inputs: list[str]) -> None:
    """Find takes exactly the seed's per-object inputs, all optional strings."""
    spec = ACTIONS[FIND, object_]
    assert list(spec.inputs) == inputs
    assert all(f.type == "string" and not f.required for f in spec.inputs.values())


def test_find_outputs_per_object() -> None:
    """Accounts give id and name, campaigns id, name and status, the others full metadata."""
    assert list(ACTIONS[FIND, "account"].outputs) == ["id", "name"]
    assert list(ACTIONS[FIND, "campaign"].outputs) == ["id", "name", "status"]
    lead = ACTIONS[FIND, "lead"].outputs
    assert {"email", "company", "status", "is_converted", "converted_opportunity_id"} <= set(lead)
    contact = ACTIONS[FIND, "contact"].outputs
    assert {"email", "account_id", "phone", "first_name", "last_name"} <= set(contact)
    pipeline = ACTIONS[FIND, "opportunity"].outputs
    assert {"stage_name", "amount", "close_date", "is_won", "forecast_category"} <= set(pipeline)
    case = ACTIONS[FIND, "case"].outputs
    assert {"case_number", "subject", "status", "priority", "is_closed"} <= set(case)


def test_find_outputs_are_typed() -> None:
    """References such as steps.find.amount type-check: ids, numbers, booleans and dates."""
    pipeline = ACTIONS[FIND, "opportunity"].outputs
    assert pipeline["amount"].type == "number"
    assert pipeline["close_date"].type == "date"
    assert pipeline["is_won"].type == "boolean"
    assert pipeline["account_id"].type == "id"
    assert ACTIONS[FIND, "lead"].outputs["is_converted"].type == "boolean"
    for (kind, _), spec in ACTIONS.items():
        if kind == FIND:
            assert spec.outputs["id"].type == "id"
            assert not any(f.required for f in spec.outputs.values())  # null on no match
            assert all(name == name.lower() for name in spec.outputs)  # snake_case


def test_convert_spec() -> None:
    """Convert needs a lead id, may merge into an account, and gives the new opportunity."""
    spec = ACTIONS[CONVERT, "lead"]
    assert list(spec.inputs) == ["lead_id", "account_id", "converted_status", "opportunity_name"]
    assert spec.inputs["lead_id"].required
    assert not spec.inputs["account_id"].required
    assert list(spec.outputs) == ["opportunity_id", "account_id", "contact_id"]


def test_get_action_returns_the_spec() -> None:
    """get_action looks up (kind, object); convert_lead implies lead."""
    assert get_action(FIND, "lead") is ACTIONS[FIND, "lead"]
    assert get_action(CONVERT, None) is ACTIONS[CONVERT, "lead"]


def test_unknown_action_names_the_known_ones() -> None:
    """An unknown kind is a permanent error listing every kind."""
    with pytest.raises(UnknownAction, match=r"unknown action 'salesforce.merge'; known: .*convert"):
        get_action("salesforce.merge", "lead")
    assert UnknownAction.retriable is False


def test_unsupported_object_names_the_supported_ones() -> None:
    """Delete on an account fails, naming the objects delete supports."""
    with pytest.raises(UnsupportedObject) as caught:
        get_action(DELETE, "account")
    assert str(caught.value) == (
        "salesforce.delete_record does not support object 'account'; it supports: case, lead"
    )
    with pytest.raises(UnsupportedObject, match="needs an object"):
        get_action(CREATE, None)
    with pytest.raises(UnsupportedObject, match="'widget'"):
        get_action(FIND, "widget")
    assert objects_for(CONVERT) == ("lead",)


def test_every_catalogue_error_is_permanent() -> None:
    """The whole error tree dead-letters: retriable is False on every class."""
    import pipeline.catalogue as catalogue

    classes = [getattr(catalogue, n) for n in catalogue.__all__]
    errors = [c for c in classes if isinstance(c, type) and issubclass(c, CatalogueError)]
    assert len(errors) == 7
    assert all(error.retriable is False for error in errors)


def test_docs_list_every_find_output_and_default() -> None:
    """docs/actions.md has a row for every find output and names every built-in default."""
    from pathlib import Path

    from pipeline.catalogue.objects import MODELS

    docs = (Path(__file__).parents[2] / "docs" / "actions.md").read_text()
    for model in MODELS.values():
        for column in model.find_columns:
            assert f"| `{column.output}` | `{column.field}` | {column.type} |" in docs
        for required in model.required:
            assert f"`{required.field}`" in docs
            assert required.default_doc in docs
