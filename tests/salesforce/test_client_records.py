"""Single-record calls against a scripted org: the documented requests and responses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ports import SalesforceGateway
from salesforce.client import SalesforceClient, checked_id
from salesforce.errors import (
    InvalidFieldError,
    MalformedIdError,
    MultipleMatchesError,
    NotFoundError,
    ValidationError,
)
from salesforce.limits import ApiUsage
from tests.salesforce.fake_org import DATA, FakeOrg, reply, sf_error

LEAD_ID = "00Q000000000001AAA"


def test_client_is_a_gateway(client: SalesforceClient) -> None:
    """The client satisfies the engine's SalesforceGateway port."""
    gateway: SalesforceGateway = client
    assert gateway is client


async def test_create_posts_json_and_returns_the_id(org: FakeOrg, client: SalesforceClient) -> None:
    """create POSTs the fields to /sobjects/{T}/ with the bearer token and returns the new id."""
    org.on(
        "POST", f"{DATA}/sobjects/Lead/", reply(201, {"id": LEAD_ID, "success": True, "errors": []})
    )
    record_id = await client.create("Lead", {"LastName": "Doe", "Company": "Acme"})
    assert record_id == LEAD_ID
    [seen] = org.calls("POST", f"{DATA}/sobjects/Lead/")
    assert seen.json() == {"LastName": "Doe", "Company": "Acme"}
    assert seen.headers["Authorization"].startswith("Bearer 00D!token")
    assert seen.headers["Content-Type"] == "application/json"


async def test_urls_come_from_the_token_instance_url(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """The token's instance_url is the base of every data call."""
    org.on(
        "GET",
        f"{DATA}/limits",
        reply(200, {"DailyApiRequests": {"Max": 15000, "Remaining": 14000}}),
    )
    limits = await client.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert client.token is not None
    assert client.token.instance_url == org.url


async def test_upsert_strips_the_external_id_and_reports_created(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """upsert PATCHes /sobjects/{T}/{field}/{value}, without the field or Id in the body."""
    org.on(
        "PATCH",
        f"{DATA}/sobjects/Lead/Ext__c/evt/42",
        reply(201, {"id": LEAD_ID, "success": True, "errors": [], "created": True}),
        reply(200, {"id": LEAD_ID, "success": True, "errors": [], "created": False}),
    )
    first = await client.upsert(
        "Lead", "Ext__c", "evt/42", {"Ext__c": "evt/42", "Id": "x", "LastName": "Doe"}
    )
    second = await client.upsert("Lead", "Ext__c", "evt/42", {"LastName": "Doe"})
    assert (first.id, first.created) == (LEAD_ID, True)
    assert (second.id, second.created) == (LEAD_ID, False)
    seen = org.calls("PATCH", f"{DATA}/sobjects/Lead/Ext__c/evt/42")
    assert seen[0].json() == {"LastName": "Doe"}


async def test_upsert_204_fetches_the_id(org: FakeOrg, client: SalesforceClient) -> None:
    """An old-API 204 upsert answer is completed by reading the record's Id."""
    org.on("PATCH", f"{DATA}/sobjects/Lead/Ext__c/k1", reply(204))
    org.on(
        "GET",
        f"{DATA}/sobjects/Lead/Ext__c/k1",
        reply(200, {"attributes": {"type": "Lead"}, "Id": LEAD_ID}),
    )
    result = await client.upsert("Lead", "Ext__c", "k1", {"LastName": "Doe"})
    assert (result.id, result.created) == (LEAD_ID, False)


async def test_upsert_300_lists_the_matching_ids(org: FakeOrg, client: SalesforceClient) -> None:
    """HTTP 300 on an upsert becomes MultipleMatchesError naming every matching record."""
    urls = [f"/services/data/v62.0/sobjects/Lead/00Q00000000000{n}AAA" for n in "12"]
    org.on("PATCH", f"{DATA}/sobjects/Lead/Email/a@b.c", reply(300, urls))
    with pytest.raises(MultipleMatchesError) as caught:
        await client.upsert("Lead", "Email", "a@b.c", {"LastName": "Doe"})
    assert caught.value.matching_ids == ("00Q000000000001AAA", "00Q000000000002AAA")
    assert not caught.value.retriable


async def test_update_get_and_delete(org: FakeOrg, client: SalesforceClient) -> None:
    """update PATCHes (204), get reads chosen fields without attributes, delete answers 204."""
    path = f"{DATA}/sobjects/Lead/{LEAD_ID}"
    org.on("PATCH", path, reply(204))
    org.on(
        "GET",
        path,
        reply(200, {"attributes": {"type": "Lead", "url": path}, "Id": LEAD_ID, "Email": None}),
    )
    org.on("DELETE", path, reply(204))
    await client.update("Lead", LEAD_ID, {"Phone": "+33 1 23"})
    record = await client.get("Lead", LEAD_ID, ["Id", "Email"])
    await client.delete("Lead", LEAD_ID)
    assert record == {"Id": LEAD_ID, "Email": None}
    assert org.calls("GET", path)[0].query == {"fields": "Id,Email"}
    assert org.calls("PATCH", path)[0].json() == {"Phone": "+33 1 23"}


async def test_delete_of_a_deleted_record_is_done(org: FakeOrg, client: SalesforceClient) -> None:
    """ENTITY_IS_DELETED on delete means the record is already gone: success, not an error."""
    path = f"{DATA}/sobjects/Case/500000000000001AAA"
    org.on("DELETE", path, sf_error(404, "ENTITY_IS_DELETED", "entity is deleted"))
    await client.delete("Case", "500000000000001AAA")


async def test_delete_of_an_unknown_record_fails(org: FakeOrg, client: SalesforceClient) -> None:
    """NOT_FOUND on delete is a permanent NotFoundError."""
    path = f"{DATA}/sobjects/Case/500000000000001AAA"
    org.on("DELETE", path, sf_error(404, "NOT_FOUND", "The requested resource does not exist"))
    with pytest.raises(NotFoundError):
        await client.delete("Case", "500000000000001AAA")


async def test_query_follows_next_records_url(org: FakeOrg, client: SalesforceClient) -> None:
    """query returns every page's records, following nextRecordsUrl until done."""
    next_url = f"{DATA}/query/0r8000000000001AAA-2"
    org.on(
        "GET",
        f"{DATA}/query",
        reply(
            200,
            {
                "totalSize": 3,
                "done": False,
                "nextRecordsUrl": next_url,
                "records": [
                    {"attributes": {"type": "Lead"}, "Id": "a"},
                    {"attributes": {}, "Id": "b"},
                ],
            },
        ),
    )
    org.on(
        "GET",
        next_url,
        reply(
            200,
            {
                "totalSize": 3,
                "done": True,
                "records": [{"Id": "c", "Owner": {"attributes": {}, "Name": "Ann"}}],
            },
        ),
    )
    rows = await client.query("SELECT Id, Owner.Name FROM Lead WHERE Email = 'x'")
    assert rows == [{"Id": "a"}, {"Id": "b"}, {"Id": "c", "Owner": {"Name": "Ann"}}]
    assert (
        org.calls("GET", f"{DATA}/query")[0].query["q"]
        == "SELECT Id, Owner.Name FROM Lead WHERE Email = 'x'"
    )


async def test_query_all_uses_query_all(org: FakeOrg, client: SalesforceClient) -> None:
    """include_deleted=True asks /queryAll."""
    org.on("GET", f"{DATA}/queryAll", reply(200, {"totalSize": 0, "done": True, "records": []}))
    assert await client.query("SELECT Id FROM Lead", include_deleted=True) == []


async def test_metadata_calls(org: FakeOrg, client: SalesforceClient) -> None:
    """describe, describe_global, identity and versions hit their documented URLs."""
    org.on("GET", f"{DATA}/sobjects/Lead/describe", reply(200, {"name": "Lead", "fields": []}))
    org.on(
        "GET",
        f"{DATA}/sobjects/",
        reply(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": []}),
    )
    org.on(
        "GET",
        "/id/00D000000000001EAA/005000000000001AAA",
        reply(200, {"username": "integration@example.com"}),
    )
    org.on(
        "GET",
        "/services/data/",
        reply(200, [{"label": "Winter '25", "url": DATA, "version": "62.0"}]),
    )
    assert (await client.describe("Lead"))["name"] == "Lead"
    assert (await client.describe_global())["maxBatchSize"] == 200
    assert (await client.identity())["username"] == "integration@example.com"
    assert (await client.versions())[0]["version"] == "62.0"
    assert "Authorization" not in org.calls("GET", "/services/data/")[0].headers


async def test_api_usage_is_read_and_published(org: FakeOrg, client: SalesforceClient) -> None:
    """The latest Sforce-Limit-Info is kept as used/limit (not remaining) and sent to listeners."""
    org.api_used = 10017
    org.on("GET", f"{DATA}/limits", reply(200, {}))
    seen: list[ApiUsage] = []
    client.on_usage(seen.append)
    assert client.api_usage is None
    await client.limits()
    assert seen == [client.api_usage]
    assert client.api_usage is not None
    assert client.api_usage.api is not None
    assert (client.api_usage.api.used, client.api_usage.api.limit) == (10018, 15000)
    assert client.api_usage.api.remaining == 4982


async def test_error_lists_become_typed_errors(org: FakeOrg, client: SalesforceClient) -> None:
    """A REST error list becomes the class of its errorCode, with message, status and fields."""
    org.on(
        "POST",
        f"{DATA}/sobjects/Lead/",
        sf_error(
            400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
        ),
    )
    with pytest.raises(ValidationError) as caught:
        await client.create("Lead", {"Company": "Acme"})
    error = caught.value
    assert error.fields == ("LastName",)
    assert error.status == 400
    assert not error.retriable
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


@pytest.mark.parametrize(
    "bad",
    ["../Case/500000000000001AAA", "00Q000000000001AAA/..", "00Q 0000", "", "00Q%2F0000000000"],
)
async def test_ids_from_event_data_cannot_steer_the_url(
    org: FakeOrg, client: SalesforceClient, bad: str
) -> None:
    """A record id that is not 15/18 letters and digits is refused before any request."""
    with pytest.raises(MalformedIdError):
        await client.delete("Lead", bad)
    with pytest.raises(MalformedIdError):
        await client.get("Lead", bad, ["Id"])
    assert org.requests == []


async def test_object_names_are_checked(org: FakeOrg, client: SalesforceClient) -> None:
    """sObject and field names must be API names: no slashes, dots or query strings."""
    with pytest.raises(InvalidFieldError):
        await client.create("Lead/../User", {"LastName": "x"})
    with pytest.raises(InvalidFieldError):
        await client.upsert("Lead", "Ext__c?x=1", "k", {})
    assert org.requests == []


async def test_delete_many_fails_only_the_bad_id(org: FakeOrg, client: SalesforceClient) -> None:
    """In delete_many a malformed id fails its own record; the others are still deleted."""
    org.on(
        "DELETE",
        f"{DATA}/composite/sobjects",
        reply(200, [{"id": LEAD_ID, "success": True, "errors": []}]),
    )
    outcomes = await client.delete_many(["../x", LEAD_ID])
    assert isinstance(outcomes[0].error, MalformedIdError)
    assert outcomes[1].id == LEAD_ID
    assert org.calls("DELETE", f"{DATA}/composite/sobjects")[0].query["ids"] == LEAD_ID


@given(st.text(max_size=20))
def test_checked_id_accepts_only_ids(text: str) -> None:
    """checked_id passes exactly the 15- and 18-character alphanumeric strings."""
    is_id = len(text) in (15, 18) and text.isascii() and text.isalnum()
    try:
        checked_id(text)
        accepted = True
    except MalformedIdError:
        accepted = False
    assert accepted is is_id
