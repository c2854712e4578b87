"""Batched writes (sObject Collections) and SOAP lead conversion against a scripted org."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ports import LeadConversion, RecordWrite
from salesforce.client import SalesforceClient, chunk_indices
from salesforce.errors import (
    ConvertedLeadError,
    RowLockError,
    ServerError,
    ValidationError,
)
from tests.salesforce.fake_org import DATA, VERSION, FakeOrg, json_response, reply

COLLECTIONS = f"{DATA}/composite/sobjects"
SOAP = f"/services/Soap/u/{VERSION}"


def ok_for_each(request_body: bytes, *, created: bool | None = None) -> list[dict[str, Any]]:
    records = orjson.loads(request_body)["records"]
    out = []
    for n, record in enumerate(records):
        entry: dict[str, Any] = {
            "id": record.get("id") or f"00Q{n:015d}",
            "success": True,
            "errors": [],
        }
        if created is not None:
            entry["created"] = created
        out.append(entry)
    return out


async def echo_ok(request: web.Request) -> web.Response:
    return json_response(200, ok_for_each(await request.read()))


async def test_create_many_splits_into_calls_of_200(org: FakeOrg, client: SalesforceClient) -> None:
    """450 records go out as 200 + 200 + 50, allOrNone false, outcomes in request order."""
    org.on("POST", COLLECTIONS, echo_ok)
    records = [RecordWrite("Lead", {"LastName": f"n{i}", "Company": "c"}) for i in range(450)]
    outcomes = await client.create_many(records)
    calls = org.calls("POST", COLLECTIONS)
    assert [len(c.json()["records"]) for c in calls] == [200, 200, 50]
    assert calls[0].json()["allOrNone"] is False
    assert calls[0].json()["records"][0] == {
        "attributes": {"type": "Lead"},
        "LastName": "n0",
        "Company": "c",
    }
    assert len(outcomes) == 450
    assert all(o.id and o.error is None and o.created for o in outcomes)


async def test_mixed_types_stay_within_ten_runs(org: FakeOrg, client: SalesforceClient) -> None:
    """Alternating types start a new call before an 11th run of one type."""
    org.on("POST", COLLECTIONS, echo_ok)
    records = [RecordWrite("Lead" if i % 2 else "Contact", {"LastName": "x"}) for i in range(30)]
    await client.create_many(records)
    assert [len(c.json()["records"]) for c in org.calls("POST", COLLECTIONS)] == [10, 10, 10]


async def test_per_record_errors_stay_per_record(org: FakeOrg, client: SalesforceClient) -> None:
    """A failed record gets its own error; the others keep their ids."""
    org.on(
        "POST",
        COLLECTIONS,
        reply(
            200,
            [
                {"id": "00Q000000000001AAA", "success": True, "errors": []},
                {
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "REQUIRED_FIELD_MISSING",
                            "message": "Required fields are missing: [LastName]",
                            "fields": ["LastName"],
                        }
                    ],
                },
            ],
        ),
    )
    outcomes = await client.create_many(
        [RecordWrite("Lead", {"LastName": "a"}), RecordWrite("Lead", {})]
    )
    assert outcomes[0].id == "00Q000000000001AAA"
    assert isinstance(outcomes[1].error, ValidationError)
    assert outcomes[1].error.fields == ("LastName",)


async def test_a_row_locked_record_is_a_retriable_outcome_not_resent(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A record that failed on UNABLE_TO_LOCK_ROW reports a retriable RowLockError; the client
    does not resend it (its caller's retry policy is the one attempt budget)."""
    locked = {
        "success": False,
        "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}],
    }
    org.on(
        "PATCH",
        COLLECTIONS,
        reply(200, [{"id": "00Q000000000001AAA", "success": True, "errors": []}, locked]),
    )
    first, second = await client.update_many(
        [
            RecordWrite("Lead", {"Phone": "1"}, id="00Q000000000001AAA"),
            RecordWrite("Lead", {"Phone": "2"}, id="00Q000000000002AAA"),
        ]
    )
    assert (first.id, first.error) == ("00Q000000000001AAA", None)
    assert isinstance(second.error, RowLockError)
    assert second.error.retriable
    assert len(org.calls("PATCH", COLLECTIONS)) == 1


async def test_a_failed_call_fails_each_of_its_records(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A 5xx on a create_many call becomes an ambiguous error on each record, not an exception."""
    org.on("POST", COLLECTIONS, reply(503, "<html><title>Unavailable</title></html>"))
    outcomes = await client.create_many([RecordWrite("Lead", {"LastName": "a"})] * 3)
    assert all(isinstance(o.error, ServerError) and o.error.ambiguous for o in outcomes)
    assert len(org.calls("POST", COLLECTIONS)) == 1


async def test_update_many_sends_ids(org: FakeOrg, client: SalesforceClient) -> None:
    """update_many PATCHes records with their id; a missing id is a programming error."""
    org.on("PATCH", COLLECTIONS, echo_ok)
    outcomes = await client.update_many(
        [RecordWrite("Case", {"Status": "Closed"}, id="500000000000001AAA")]
    )
    assert org.calls("PATCH", COLLECTIONS)[0].json()["records"][0]["id"] == "500000000000001AAA"
    assert outcomes[0].created is False
    with pytest.raises(ValueError, match="id"):
        await client.update_many([RecordWrite("Case", {"Status": "Closed"})])


async def test_upsert_many_reports_created_per_record(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """upsert_many PATCHes /composite/sobjects/{T}/{field} and passes 'created' through."""
    path = f"{COLLECTIONS}/Lead/Ext__c"
    org.on(
        "PATCH",
        path,
        reply(
            200,
            [
                {"id": "00Q000000000001AAA", "success": True, "errors": [], "created": True},
                {"id": "00Q000000000002AAA", "success": True, "errors": [], "created": False},
            ],
        ),
    )
    outcomes = await client.upsert_many(
        "Lead", "Ext__c", [{"Ext__c": "a", "LastName": "A"}, {"Ext__c": "b", "LastName": "B"}]
    )
    assert [o.created for o in outcomes] == [True, False]
    assert org.calls("PATCH", path)[0].json()["records"][0] == {
        "attributes": {"type": "Lead"},
        "Ext__c": "a",
        "LastName": "A",
    }
    with pytest.raises(ValueError, match="Ext__c"):
        await client.upsert_many("Lead", "Ext__c", [{"LastName": "no key"}])


def soap_result(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Header>'
        "<LimitInfoHeader><limitInfo><current>12</current><limit>15000</limit><type>API REQUESTS</type></limitInfo>"
        f"</LimitInfoHeader></soapenv:Header><soapenv:Body><convertLeadResponse>{body}</convertLeadResponse>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


async def test_convert_lead_uses_soap(org: FakeOrg, client: SalesforceClient) -> None:
    """convert_lead posts a partner-API convertLead envelope with the session and parses the ids."""
    org.on(
        "GET",
        f"{DATA}/query",
        reply(
            200, {"totalSize": 1, "done": True, "records": [{"MasterLabel": "Closed - Converted"}]}
        ),
    )
    org.on(
        "POST",
        SOAP,
        reply(
            200,
            soap_result(
                "<result><accountId>001000000000001AAA</accountId><contactId>003000000000001AAA</contactId>"
                "<leadId>00Q000000000001AAA</leadId><opportunityId>006000000000001AAA</opportunityId>"
                "<success>true</success></result>"
            ),
            content_type="text/xml",
        ),
    )
    result = await client.convert_lead(
        LeadConversion("00Q000000000001AAA", account_id="001000000000001AAA")
    )
    assert result.opportunity_id == "006000000000001AAA"
    assert result.contact_id == "003000000000001AAA"
    [seen] = org.calls("POST", SOAP)
    text = seen.body.decode()
    assert seen.headers["Content-Type"].startswith("text/xml")
    assert "SOAPAction" in seen.headers
    assert "<urn:sessionId>00D!token1</urn:sessionId>" in text
    assert "<urn:convertedStatus>Closed - Converted</urn:convertedStatus>" in text
    assert (
        text.index("<urn:accountId>")
        < text.index("<urn:convertedStatus>")
        < text.index("<urn:leadId>")
    )
    assert "IsConverted = true" in org.calls("GET", f"{DATA}/query")[0].query["q"]


async def test_convert_lead_failure_is_typed(org: FakeOrg, client: SalesforceClient) -> None:
    """A convertLead result with success=false raises the class of its statusCode."""
    org.on(
        "POST",
        SOAP,
        reply(
            200,
            soap_result(
                "<result><errors><message>cannot reference converted lead</message>"
                "<statusCode>CANNOT_UPDATE_CONVERTED_LEAD</statusCode></errors>"
                '<leadId xsi:nil="true"/><opportunityId xsi:nil="true"/><success>false</success></result>'
            ),
            content_type="text/xml",
        ),
    )
    with pytest.raises(ConvertedLeadError, match="converted lead"):
        await client.convert_lead(
            LeadConversion("00Q000000000001AAA", converted_status="Closed - Converted")
        )
    assert org.calls("GET", f"{DATA}/query") == []


async def test_convert_lead_reauthenticates_on_a_soap_session_fault(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """An expired session on SOAP (a 500 fault, not a 401) re-authenticates once with a new envelope."""
    ok = soap_result(
        '<result><leadId>00Q000000000001AAA</leadId><opportunityId xsi:nil="true"/><success>true</success></result>'
    )
    org.on("POST", SOAP, reply(200, ok, content_type="text/xml"))
    await client.connect()
    org.expire_tokens()
    result = await client.convert_lead(
        LeadConversion(
            "00Q000000000001AAA",
            converted_status="Closed - Converted",
            do_not_create_opportunity=True,
        )
    )
    assert result.opportunity_id is None
    calls = org.calls("POST", SOAP)
    assert len(calls) == 2
    assert "00D!token2" in calls[1].body.decode()
    assert "<urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity>" in calls[1].body.decode()


async def test_a_row_lock_soap_fault_is_not_ambiguous(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """UNABLE_TO_LOCK_ROW as a SOAP fault (HTTP 500) is retriable and not ambiguous, so the
    engine may convert again; the next call converts."""
    fault = (
        b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body><soapenv:Fault><faultcode>sf:UNABLE_TO_LOCK_ROW</faultcode>"
        b"<faultstring>UNABLE_TO_LOCK_ROW: unable to obtain exclusive access</faultstring>"
        b"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    ok = soap_result(
        '<result><leadId>00Q000000000001AAA</leadId><opportunityId xsi:nil="true"/><success>true</success></result>'
    )
    org.on(
        "POST",
        SOAP,
        reply(500, fault, content_type="text/xml"),
        reply(200, ok, content_type="text/xml"),
    )
    conversion = LeadConversion("00Q000000000001AAA", converted_status="Closed - Converted")
    with pytest.raises(RowLockError) as caught:
        await client.convert_lead(conversion)
    assert caught.value.retriable
    assert not caught.value.ambiguous
    result = await client.convert_lead(conversion)
    assert result.lead_id == "00Q000000000001AAA"
    assert len(org.calls("POST", SOAP)) == 2


@given(st.lists(st.sampled_from(["Lead", "Contact", "Account"]), max_size=900))
def test_chunks_respect_collections_limits(types: list[str]) -> None:
    """Chunks keep order, cover every record once, hold ≤200 records and ≤10 runs of one type."""
    payloads = [{"attributes": {"type": t}} for t in types]
    chunks = chunk_indices(payloads)
    assert [i for chunk in chunks for i in chunk] == list(range(len(types)))
    for chunk in chunks:
        assert 0 < len(chunk) <= 200
        runs = 1 + sum(types[a] != types[b] for a, b in itertools.pairwise(chunk))
        assert runs <= 10


async def test_delete_many(org: FakeOrg, client: SalesforceClient) -> None:
    """delete_many sends ids in the query string; already-deleted records count as deleted."""
    org.on(
        "DELETE",
        COLLECTIONS,
        reply(
            200,
            [
                {"id": "00Q000000000001AAA", "success": True, "errors": []},
                {
                    "id": "00Q000000000002AAA",
                    "success": False,
                    "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}],
                },
                {
                    "id": "00Q000000000003AAA",
                    "success": False,
                    "errors": [{"statusCode": "INSUFFICIENT_ACCESS_OR_READONLY", "message": "no"}],
                },
            ],
        ),
    )
    ids = ["00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000003AAA"]
    outcomes = await client.delete_many(ids)
    assert [o.error is None for o in outcomes] == [True, True, False]
    assert outcomes[1].id == "00Q000000000002AAA"
    assert org.calls("DELETE", COLLECTIONS)[0].query == {"ids": ",".join(ids), "allOrNone": "false"}
