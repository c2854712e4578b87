"""The pure store: savepoints, indexes and derived fields, without HTTP."""

from __future__ import annotations

import time

import pytest

from sfemulator import EmulatorConfig, FaultRule
from sfemulator.errors import ApiError
from sfemulator.ids import IdFactory
from sfemulator.schema import DEFAULT_EXTERNAL_ID_FIELDS, build_schema
from sfemulator.soql_eval import run
from sfemulator.store import Store


@pytest.fixture
def store() -> Store:
    ids = IdFactory(9)
    return Store(build_schema(DEFAULT_EXTERNAL_ID_FIELDS), ids, time.time, ids.new("User"))


def test_rollback_restores_rows_and_indexes(store: Store) -> None:
    """Rolling back a savepoint undoes creates and updates, and their index entries."""
    kept = store.create("Lead", {"LastName": "Kept", "Company": "C", "Actionflows_Key__c": "a"})
    point = store.savepoint()
    store.update("Lead", kept, {"Actionflows_Key__c": "b"})
    store.create("Lead", {"LastName": "Gone", "Company": "C", "Actionflows_Key__c": "c"})
    store.rollback(point)
    assert [r["LastName"] for r in store.rows("Lead")] == ["Kept"]
    assert [r["Id"] for r in store.match_external("Lead", "Actionflows_Key__c", "a")] == [kept]
    assert store.match_external("Lead", "Actionflows_Key__c", "b") == []
    assert (
        store.upsert("Lead", "Actionflows_Key__c", "c", {"LastName": "New", "Company": "C"})[1]
        is True
    )


def test_indexed_equality_queries_keep_creation_order(store: Store) -> None:
    """Filtering on an indexed field returns the same rows, in the same order, as a scan."""
    for n in range(5):
        lead = store.create("Lead", {"LastName": f"L{n}", "Company": "C"})
        if n == 2:
            store.update("Lead", lead, {"Phone": "1"})  # an update must not reorder results
    found = run(
        "SELECT LastName FROM Lead WHERE Company = 'c' AND LastName != 'L1'",
        store,
        "62.0",
        include_deleted=False,
    )
    assert [r["LastName"] for r in found.records] == ["L0", "L2", "L3", "L4"]


def test_duplicate_rule_is_case_insensitive_and_ignores_deleted(store: Store) -> None:
    """Email duplicates match ignoring case; a soft-deleted original no longer blocks."""
    first = store.create("Contact", {"LastName": "A", "Email": "A@X.test"})
    with pytest.raises(ApiError) as caught:
        store.create("Contact", {"LastName": "B", "Email": "a@x.TEST"})
    assert caught.value.error_code == "DUPLICATES_DETECTED"
    store.delete("Contact", first)
    store.create("Contact", {"LastName": "B", "Email": "a@x.test"})


def test_derived_fields(store: Store) -> None:
    """Name, opportunity probability/closed flags and case closure are derived like the UI."""
    lead = store.create("Lead", {"FirstName": "Ada", "LastName": "Lovelace", "Company": "C"})
    assert store.get("Lead", lead)["Name"] == "Ada Lovelace"
    opp = store.create(
        "Opportunity", {"Name": "D", "StageName": "Closed Won", "CloseDate": "2026-03-31"}
    )
    record = store.get("Opportunity", opp)
    assert (record["IsClosed"], record["IsWon"], record["Probability"]) == (True, True, 100)
    case = store.create("Case", {"Subject": "s"})
    store.update("Case", case, {"Status": "Closed"})
    assert store.get("Case", case)["IsClosed"] is True
    assert store.get("Case", case)["ClosedDate"]


def test_json_types_are_checked_per_field(store: Store) -> None:
    """Numbers accept numeric strings; a bad date or a list is JSON_PARSER_ERROR."""
    opp = store.create(
        "Opportunity",
        {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-03-31", "Amount": "1250.50"},
    )
    assert store.get("Opportunity", opp)["Amount"] == 1250.5
    for bad in ({"CloseDate": "31/03/2026"}, {"Amount": "lots"}, {"Name": ["x"]}):
        with pytest.raises(ApiError) as caught:
            store.update("Opportunity", opp, bad)
        assert caught.value.error_code == "JSON_PARSER_ERROR"


def test_reference_only_objects_are_read_only(store: Store) -> None:
    """LeadStatus, User and Organization rows cannot be created, updated or deleted via DML."""
    store.seed_reference_data(
        {"Name": "Org"}, {"Id": store.user_id, "Username": "u@x.test", "LastName": "U"}
    )
    status = next(store.rows("LeadStatus"))
    for attempt in (
        lambda: store.create("LeadStatus", {"MasterLabel": "x"}),
        lambda: store.update("LeadStatus", status["Id"], {"MasterLabel": "x"}),
        lambda: store.delete("LeadStatus", status["Id"]),
    ):
        with pytest.raises(ApiError) as caught:
            attempt()
        assert caught.value.status == 400


def test_config_rejects_an_unknown_api_version_and_accepts_lists() -> None:
    """api_version must be a real version string; fault lists become tuples."""
    with pytest.raises(ValueError, match="api_version"):
        EmulatorConfig(api_version="62")
    assert EmulatorConfig(faults=[FaultRule("hang")]).faults == (FaultRule("hang"),)
    with pytest.raises(ValueError, match="unknown fault action"):
        FaultRule("explode")
