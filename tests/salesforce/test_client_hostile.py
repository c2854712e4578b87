"""No response shape escapes the client untyped: any body becomes a result or a SalesforceError."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ports import LeadConversion, RecordWrite
from salesforce import errors, responses, soap
from salesforce.auth import parse_token_response
from salesforce.client import SalesforceClient
from salesforce.errors import SalesforceError, UnexpectedResponseError
from salesforce.limits import parse_limit_info
from tests.json_strategies import json_documents, json_scalars
from tests.salesforce.fake_org import DATA, VERSION, FakeOrg, json_response, reply

LEAD = "00Q000000000001AAA"

COLLECTIONS = f"{DATA}/composite/sobjects"


async def test_collections_errors_as_bare_strings_are_typed(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """Reproduction of issue 9: an independent emulator answered Collections with errors as
    strings and error_from_record crashed with AttributeError."""

    async def strings(request: web.Request) -> web.Response:
        return json_response(200, [{"success": False, "errors": ["FIELD_INTEGRITY_EXCEPTION"]}])

    org.on("POST", COLLECTIONS, strings)
    [outcome] = await client.create_many([RecordWrite("Lead", {"LastName": "x"})])
    assert isinstance(outcome.error, SalesforceError)
    assert "FIELD_INTEGRITY_EXCEPTION" in outcome.error.message


# --- every parser, fuzzed ---------------------------------------------------------------------

codes = st.sampled_from(["DUPLICATES_DETECTED", "REQUEST_LIMIT_EXCEEDED", "invalid_grant", ""])
values = json_documents(json_scalars | codes, width=3, leaves=12)
KEYS = (
    "errorCode", "statusCode", "message", "fields", "duplicateResult", "error",
    "error_description", "records", "done", "nextRecordsUrl", "totalSize", "compositeResponse",
    "httpStatusCode", "body", "id", "success", "errors", "created", "access_token",
    "instance_url", "issued_at", "scope", "token_type", "refresh_token",
)  # fmt: skip
shaped = st.fixed_dictionaries({}, optional=dict.fromkeys(KEYS, values))
documents = values | shaped | st.lists(shaped | values, max_size=3)


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def deep(depth: int) -> bytes:
    return b'{"records": ' + b"[" * depth + b"]" * depth + b"}"


bodies = (
    documents.map(encode)
    | st.binary(max_size=120)
    | st.integers(0, 3000).map(deep)
    | st.sampled_from(
        [
            b"",
            b"<html><title>Gateway</title></html>",
            b"<?xml version='1.0'?><soapenv:Envelope><soapenv:Fault/></soapenv:Envelope>",
            b"<soapenv:Envelope>Fault<",
            b"\xff\xfe{",
            b"Bad_OAuth_Token",
            b'[{"errorCode": "' + b"A" * 10_000 + b'"}]',
        ]
    )
)
statuses = st.integers(100, 599)


def typed_or_value(call: Callable[[], object]) -> object:
    """The call returns, or raises a SalesforceError (returned); anything else fails the test."""
    try:
        return call()
    except SalesforceError as error:
        return error


@settings(max_examples=400, deadline=None)
@given(statuses, bodies, st.sampled_from(["application/json", "text/html", "text/xml", ""]))
def test_any_error_body_becomes_one_typed_error(status: int, body: bytes, kind: str) -> None:
    """REST error lists, OAuth errors, SOAP faults, HTML, nothing: a SalesforceError."""
    error = errors.error_from_response(status, body, kind)
    assert isinstance(error, SalesforceError)
    assert len(str(error)) < 5000
    assert isinstance(errors.error_from_soap_fault(status, body), SalesforceError)


@settings(max_examples=300, deadline=None)
@given(documents, st.none() | statuses)
def test_any_error_entry_becomes_a_typed_error(entry: Any, status: int | None) -> None:
    """An entry of a Collections or REST error list may be anything (a bare string included)."""
    error = errors.error_from_record(entry, status=status)
    assert isinstance(error, SalesforceError)
    assert all(name and "," not in name for name in error.fields)


@settings(max_examples=300, deadline=None)
@given(statuses, bodies)
def test_any_token_answer_is_a_token_or_a_typed_error(status: int, body: bytes) -> None:
    """The OAuth token endpoint: a Token, or an AuthError / SalesforceError."""
    typed_or_value(lambda: parse_token_response(status, body, "application/json", now=0.0))


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_any_success_body_parses_or_fails_typed(body: bytes) -> None:
    """Every reader of a 2xx body: a value of the documented type, or a SalesforceError."""
    for parse in (
        responses.created_id,
        lambda d: responses.upsert_result(d, 201),
        responses.record,
        responses.query_page,
        responses.total_size,
        responses.composite_single,
        lambda d: responses.collection_results(d, 1),
    ):
        typed_or_value(lambda parse=parse: parse(responses.json_value(body, "fuzz")))
    data = typed_or_value(lambda: responses.json_value(body, "fuzz"))
    for created in (None, True):
        outcome = responses.record_outcome(data, created)
        assert outcome.error is None or isinstance(outcome.error, SalesforceError)
        assert outcome.error is not None or isinstance(outcome.id, str)
    typed_or_value(lambda: soap.parse_convert_lead_response(body))
    soap.parse_limit_info_header(body)  # a reading, or None; never an exception


@settings(max_examples=200, deadline=None)
@given(documents)
def test_any_collections_result_is_an_outcome(result: Any) -> None:
    """One sObject Collections result of any shape: an id, or a typed error."""
    outcome = responses.record_outcome(result, None)
    assert (outcome.error is None) == (outcome.id is not None and result.get("success") is True)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.sampled_from(["api-usage=" + "9" * 5000 + "/1"]))
def test_any_limit_header_parses(header: str) -> None:
    """Sforce-Limit-Info of any text: a usage figure or None."""
    parse_limit_info(header)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'"x"',
        b"<html><body>ok</body></html>",
        b"\xff\xfe",
        b'{"records": ' + b"[" * 500 + b"]" * 500 + b"}",
        b'{"id": {"nested": 1}, "totalSize": "3", "records": "none", "done": "no"}',
        b'{"done": false, "records": [], "nextRecordsUrl": "@evil.example/x"}',
        b'{"compositeResponse": [{"httpStatusCode": 400, "body": ["BAD"]}]}',
    ],
)
async def test_every_client_call_returns_or_raises_typed(
    org: FakeOrg, client: SalesforceClient, body: bytes
) -> None:
    """Whatever a 200 carries, each client call returns or raises a SalesforceError."""
    for method in ("GET", "POST", "PATCH", "DELETE"):
        for path in (
            f"{DATA}/sobjects/Lead/",
            f"{DATA}/sobjects/Lead/Ext__c/k",
            f"{DATA}/query",
            f"{DATA}/limits",
            f"{DATA}/composite",
            COLLECTIONS,
            f"{DATA}/sobjects/Lead/describe",
            "/services/data/",
            f"/services/Soap/u/{VERSION}",
        ):
            org.on(method, path, *[reply(200, body, content_type="application/json")] * 10)
    long_soql = "SELECT Id FROM Lead WHERE Name IN (" + ",".join(["'x'"] * 3000) + ")"
    calls = [
        client.create("Lead", {"LastName": "x"}),
        client.upsert("Lead", "Ext__c", "k", {"LastName": "x"}),
        client.query("SELECT Id FROM Lead"),
        client.query(long_soql),
        client.count("SELECT COUNT() FROM Lead"),
        client.limits(),
        client.describe("Lead"),
        client.versions(),
        client.create_many([RecordWrite("Lead", {"LastName": "x"})]),
        client.convert_lead(LeadConversion(LEAD, converted_status="Closed - Converted")),
    ]
    for call in calls:
        with contextlib.suppress(SalesforceError):
            await call


async def test_a_next_page_on_another_host_is_refused(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A nextRecordsUrl that is not an instance path would send the token elsewhere: refused."""
    page = {"done": False, "records": [], "nextRecordsUrl": "@evil.example/services/data/v62.0/q"}
    org.on("GET", f"{DATA}/query", reply(200, page))
    with pytest.raises(UnexpectedResponseError, match="nextRecordsUrl"):
        await client.query("SELECT Id FROM Lead")
