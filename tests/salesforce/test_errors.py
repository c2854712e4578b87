"""Error registry and body parsing: every Salesforce error shape lands in the right class."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ports import GatewayError
from salesforce import errors as e

SOAP_FAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode>
<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring>
<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">
<sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode>
<sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session</sf:exceptionMessage>
</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


@pytest.mark.parametrize(
    ("code", "cls", "retriable"),
    [
        ("REQUIRED_FIELD_MISSING", e.ValidationError, False),
        ("STRING_TOO_LONG", e.ValidationError, False),
        ("INVALID_FIELD", e.InvalidFieldError, False),
        ("MALFORMED_ID", e.MalformedIdError, False),
        ("MALFORMED_QUERY", e.QueryError, False),
        ("INVALID_QUERY_LOCATOR", e.QueryError, False),
        ("DUPLICATES_DETECTED", e.DuplicateError, False),
        ("DUPLICATE_VALUE", e.DuplicateError, False),
        ("NOT_FOUND", e.NotFoundError, False),
        ("ENTITY_IS_DELETED", e.NotFoundError, False),
        ("CANNOT_UPDATE_CONVERTED_LEAD", e.ConvertedLeadError, False),
        ("API_DISABLED_FOR_ORG", e.AccessDeniedError, False),
        ("INSUFFICIENT_ACCESS_OR_READONLY", e.AccessDeniedError, False),
        ("UNABLE_TO_LOCK_ROW", e.RowLockError, True),
        ("SERVER_UNAVAILABLE", e.ServerError, True),
        ("ALL_OR_NONE_OPERATION_ROLLED_BACK", e.RolledBackError, True),
        ("INVALID_SESSION_ID", e.SessionExpiredError, True),  # pauses (throttle)
        ("invalid_grant", e.InvalidGrantError, True),  # pauses (throttle)
        ("SOMETHING_NEW", e.UnknownError, False),
    ],
)
def test_for_code(code: str, cls: type[e.SalesforceError], retriable: bool) -> None:
    """for_code maps each errorCode family to one class with the documented retriable flag."""
    assert e.for_code(code) is cls
    assert cls.retriable is retriable
    assert issubclass(cls, GatewayError)


def test_request_limit_is_split_by_message() -> None:
    """Both limits throttle (pause, not an attempt), told apart by the message for the cause;
    unknown limits count as the daily one."""
    daily = e.for_code("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    concurrent = e.for_code(
        "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded"
    )
    assert daily is e.DailyLimitError
    assert (daily.retriable, daily.throttle) == (True, True)
    assert concurrent is e.ConcurrentLimitError
    assert (concurrent.retriable, concurrent.throttle) == (True, True)
    assert daily.pause_cause != concurrent.pause_cause
    assert e.for_code("REQUEST_LIMIT_EXCEEDED", "Some new limit") is e.DailyLimitError


def test_rest_error_list() -> None:
    """A REST error list gives the first entry's class, message and fields."""
    body = orjson.dumps(
        [
            {
                "message": "Required fields are missing: [LastName, Company]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["LastName", "Company"],
            }
        ]
    )
    error = e.error_from_response(400, body, "application/json;charset=UTF-8")
    assert isinstance(error, e.ValidationError)
    assert error.fields == ("LastName", "Company")
    assert error.status == 400
    assert str(error).startswith("REQUIRED_FIELD_MISSING: Required fields are missing")


def test_duplicates_detected_names_the_matches() -> None:
    """DUPLICATES_DETECTED carries the ids of the matching records."""
    body = orjson.dumps(
        [
            {
                "duplicateResult": {
                    "allowSave": True,
                    "duplicateRule": "Standard_Contact_Duplicate_Rule",
                    "matchResults": [
                        {
                            "entityType": "Contact",
                            "matchRecords": [
                                {
                                    "matchConfidence": 100.0,
                                    "record": {
                                        "attributes": {"type": "Contact"},
                                        "Id": "003aj000002oTldAAE",
                                    },
                                }
                            ],
                        }
                    ],
                },
                "errorCode": "DUPLICATES_DETECTED",
                "message": "Use one of these records?",
            }
        ]
    )
    error = e.error_from_response(400, body)
    assert isinstance(error, e.DuplicateError)
    assert error.matching_ids == ("003aj000002oTldAAE",)


def test_collections_status_code_key() -> None:
    """Collections and SOAP results use statusCode instead of errorCode."""
    error = e.error_from_record(
        {
            "statusCode": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access",
            "fields": [],
        }
    )
    assert isinstance(error, e.RowLockError)


def test_html_503_from_a_cdn() -> None:
    """An HTML 503 is a retriable ServerError whose message is the page title, not the markup."""
    body = b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>503</h1></body></html>"
    error = e.error_from_response(503, body, "text/html")
    assert isinstance(error, e.ServerError)
    assert error.message == "Service Unavailable"
    assert error.retriable


def test_empty_and_unparseable_bodies_fall_back_to_status() -> None:
    """Without a readable body the HTTP status picks the class."""
    assert isinstance(e.error_from_response(502, b""), e.ServerError)
    assert isinstance(e.error_from_response(404, b"nope"), e.NotFoundError)
    assert isinstance(e.error_from_response(401, b""), e.SessionExpiredError)
    assert isinstance(e.error_from_response(400, b"{broken"), e.RequestError)


def test_session_not_valid_for_rest() -> None:
    """The 401 that re-authentication cannot fix has its own class."""
    body = orjson.dumps(
        [
            {
                "message": "This session is not valid for use with the REST API",
                "errorCode": "INVALID_SESSION_ID",
            }
        ]
    )
    assert isinstance(e.error_from_response(401, body), e.SessionNotValidForApiError)


def test_soap_fault() -> None:
    """A SOAP fault's exceptionCode picks the class, e.g. INVALID_SESSION_ID on HTTP 500."""
    error = e.error_from_response(500, SOAP_FAULT, "text/xml")
    assert isinstance(error, e.SessionExpiredError)
    assert error.error_code == "INVALID_SESSION_ID"
    assert "Illegal Session" in error.message


def test_oauth_error_object() -> None:
    """An OAuth error object is an AuthError subclass with the description as message."""
    body = b'{"error":"invalid_grant","error_description":"expired authorization code"}'
    error = e.error_from_response(400, body)
    assert isinstance(error, e.InvalidGrantError)
    assert error.message == "expired authorization code"


def test_ambiguous_is_kept_and_shown() -> None:
    """The ambiguous flag survives parsing and is visible in the message."""
    error = e.error_from_response(500, b"", ambiguous=True)
    assert error.ambiguous
    assert "ambiguous" in str(error)


def test_every_class_is_documented_in_the_tree() -> None:
    """The module docstring's tree names every error class."""
    doc = e.__doc__ or ""
    for name in dir(e):
        obj = getattr(e, name)
        if isinstance(obj, type) and issubclass(obj, e.SalesforceError):
            assert name in doc, name


def test_identity_url_bad_token_is_a_session_error() -> None:
    """The identity URL's 403 'Bad_OAuth_Token' means an expired token, so it re-authenticates."""
    error = e.error_from_response(403, b"Bad_OAuth_Token", "text/plain")
    assert type(error) is e.SessionExpiredError


@given(
    st.integers(300, 599),
    st.binary(max_size=300),
    st.sampled_from(["", "text/html", "application/json", "text/xml"]),
)
def test_any_failed_response_parses(status: int, body: bytes, content_type: str) -> None:
    """Whatever bytes a failed response carries, parsing yields a SalesforceError, never raises."""
    assert isinstance(e.error_from_response(status, body, content_type), e.SalesforceError)


@given(
    st.integers(300, 599),
    st.lists(
        st.dictionaries(
            st.sampled_from(["message", "errorCode", "statusCode", "fields"]),
            st.one_of(st.text(max_size=20), st.none(), st.lists(st.text(max_size=5))),
        )
    ),
)
def test_odd_error_lists_parse(status: int, entries: list[dict[str, object]]) -> None:
    """Error lists with missing, null or oddly typed keys still parse."""
    body = orjson.dumps(entries)
    assert isinstance(e.error_from_response(status, body), e.SalesforceError)


@given(
    st.recursive(
        st.none() | st.text(max_size=5) | st.integers(-1000, 1000),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["matchResults", "matchRecords", "record", "Id"]), inner, max_size=3
            )
        ),
        max_leaves=12,
    )
)
def test_odd_duplicate_results_parse(duplicate_result: object) -> None:
    """A malformed duplicateResult never breaks parsing of a DUPLICATES_DETECTED error."""
    body = orjson.dumps(
        [
            {
                "errorCode": "DUPLICATES_DETECTED",
                "message": "dup",
                "duplicateResult": duplicate_result,
            }
        ]
    )
    assert isinstance(e.error_from_response(400, body), e.DuplicateError)
