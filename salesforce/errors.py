"""Every failure the Salesforce client reports, and how to read one out of a response.

The root is :class:`SalesforceError`, itself a :class:`pipeline.ports.GatewayError`, so the engine
decides retry / pause / dead letter from the class flags alone (R: ``retriable``,
T: ``throttle``)::

    SalesforceError                    R T  Salesforce says
    ├── AuthError                      R T  token endpoint or session refused: the connection
    │   │                                   itself is broken, so the engine pauses until it works
    │   │                                   again instead of dead-lettering every event
    │   ├── InvalidGrantError          R T  invalid_grant: not approved, bad aud, expired …
    │   ├── InvalidClientError         R T  invalid_client_id, invalid_client …
    │   ├── InactiveAccountError       R T  inactive_user, inactive_org
    │   ├── TokenRateLimitedError      R T  rate_limit_exceeded on the token endpoint
    │   ├── SessionExpiredError        R T  INVALID_SESSION_ID still after one re-authentication
    │   └── SessionNotValidForApiError R T  401 "…session is not valid for use with the REST API"
    ├── TransportError                 R -  no usable HTTP response (``ambiguous`` on writes)
    │   ├── RequestTimeoutError        R -  the call took longer than the configured timeout
    │   ├── ConnectionLostError        R -  refused, reset, closed mid-response
    │   └── TlsError                   - -  certificate not trusted: a configuration problem
    ├── ServerError                    R -  5xx, SERVER_UNAVAILABLE, a CDN's HTML 503
    ├── UnexpectedResponseError        R -  a success whose body is not the documented shape
    │                                       (``ambiguous`` after a write: it happened, unread)
    ├── ApiLimitError                  R -  REQUEST_LIMIT_EXCEEDED
    │   ├── ConcurrentLimitError       R T  "ConcurrentRequests … Limit exceeded", HTTP 429
    │   └── DailyLimitError            R T  "TotalRequests Limit exceeded." (rolling 24 h)
    ├── RowLockError                   R -  UNABLE_TO_LOCK_ROW
    ├── WriteConflictError             R -  a conditional write kept losing to other writers
    ├── RolledBackError                R -  ALL_OR_NONE_OPERATION_ROLLED_BACK, PROCESSING_HALTED
    ├── RequestError                   - -  the request itself is wrong: dead letter
    │   ├── ValidationError            - -  REQUIRED_FIELD_MISSING, STRING_TOO_LONG, picklists …
    │   ├── InvalidFieldError          - -  INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE
    │   ├── MalformedIdError           - -  MALFORMED_ID, INVALID_CROSS_REFERENCE_KEY
    │   ├── QueryError                 - -  MALFORMED_QUERY, INVALID_TYPE, INVALID_QUERY_LOCATOR …
    │   ├── DuplicateError             - -  DUPLICATES_DETECTED, DUPLICATE_VALUE
    │   ├── MultipleMatchesError       - -  HTTP 300: an external id matched several records
    │   ├── NotFoundError              - -  NOT_FOUND, ENTITY_IS_DELETED
    │   ├── ConvertedLeadError         - -  CANNOT_UPDATE_CONVERTED_LEAD
    │   ├── PreconditionFailedError    - -  412: changed since If-Unmodified-Since; read again
    │   └── AccessDeniedError          - -  INSUFFICIENT_ACCESS_*, API_DISABLED_FOR_ORG, 403
    └── UnknownError                   - -  a code this module does not know

A ``throttle`` error is not the event's fault; the engine pauses and its log line says why, in
the words of the class's ``pause_cause`` (budget, refused login, concurrency limit), and its
stable ``pause_code`` (``budget``, ``login_refused``, ``concurrency_limit``, ``daily_limit``) is
the verdict's code, ``pause.<code>``, which metrics and traces label the pause with.

``for_code(code, message)`` is the registry lookup (aiokafka style). The parsers at the bottom are
pure: bytes and a status in, an exception instance out, for the three body shapes Salesforce uses
(REST error lists, OAuth error objects, SOAP faults) plus the HTML a CDN answers with. They accept
any bytes: a body of an unexpected shape (an error given as a bare string, a number where a
message should be, HTML, nothing) still gives a typed error, never an ``AttributeError``; and
what they copy out of a body is bounded (:data:`MAX_MESSAGE`, :data:`MAX_CODE`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar
from xml.etree import ElementTree

import orjson

from pipeline.ports import GatewayError


class SalesforceError(GatewayError):
    """Root of the package's errors. ``matching_ids`` lists the records a duplicate error names."""

    codes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status: int | None = None,
        fields: Sequence[str] = (),
        ambiguous: bool = False,
        retry_after: float | None = None,
        matching_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(
            message,
            error_code=error_code,
            status=status,
            fields=fields,
            ambiguous=ambiguous,
            retry_after=retry_after,
        )
        self.matching_ids = tuple(matching_ids)

    def __str__(self) -> str:
        parts = [self.message]
        if self.error_code:
            parts.insert(0, f"{self.error_code}:")
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.fields:
            parts.append(f"fields={list(self.fields)}")
        if self.ambiguous:
            parts.append("[ambiguous: the write may have been applied]")
        return " ".join(parts)


# --- authentication ---------------------------------------------------------------------------


class AuthError(SalesforceError):
    # Not the event's fault: every event would fail the same way until someone fixes the
    # connection. A throttle pauses consumption (nothing dead-lettered, no attempt counted).
    retriable = True
    throttle = True
    pause_cause: ClassVar[str] = "Salesforce refused the login"
    pause_code: ClassVar[str] = "login_refused"
    codes: ClassVar[tuple[str, ...]] = (
        "invalid_request",
        "unsupported_grant_type",
        "unsupported_response_type",
    )


class InvalidGrantError(AuthError):
    codes: ClassVar[tuple[str, ...]] = ("invalid_grant",)


class InvalidClientError(AuthError):
    codes: ClassVar[tuple[str, ...]] = (
        "invalid_client_id",
        "invalid_client",
        "invalid_client_credentials",
    )


class InactiveAccountError(AuthError):
    codes: ClassVar[tuple[str, ...]] = ("inactive_user", "inactive_org")


class TokenRateLimitedError(AuthError):
    retriable = True
    codes: ClassVar[tuple[str, ...]] = ("rate_limit_exceeded",)


class SessionExpiredError(AuthError):
    codes: ClassVar[tuple[str, ...]] = ("INVALID_SESSION_ID",)


class SessionNotValidForApiError(AuthError):
    """A 401 that re-authenticating does not fix (the connected app or session type is wrong)."""


# --- transport and server ---------------------------------------------------------------------


class TransportError(SalesforceError):
    retriable = True


class RequestTimeoutError(TransportError):
    pass


class ConnectionLostError(TransportError):
    pass


class TlsError(TransportError):
    retriable = False


class ServerError(SalesforceError):
    retriable = True
    codes: ClassVar[tuple[str, ...]] = ("SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION")


class UnexpectedResponseError(SalesforceError):
    """A 2xx answer the client cannot read: not JSON, or not the shape the API documents.

    Retriable (a proxy may have mangled it); after a write it is ``ambiguous``: the write was
    applied, its result is unknown, so only an idempotent step may try again."""

    retriable = True


# --- limits and contention --------------------------------------------------------------------


class ApiLimitError(SalesforceError):
    retriable = True


class ConcurrentLimitError(ApiLimitError):
    # Too many long-running requests in the org at once: clears in seconds, and is no more
    # the event's fault than the daily limit, so it pauses rather than burning attempts.
    throttle = True
    pause_cause: ClassVar[str] = "the org's concurrent-request limit is reached"
    pause_code: ClassVar[str] = "concurrency_limit"


class DailyLimitError(ApiLimitError):
    throttle = True
    pause_cause: ClassVar[str] = "the org's daily API limit is reached"
    pause_code: ClassVar[str] = "daily_limit"


class RowLockError(SalesforceError):
    retriable = True
    codes: ClassVar[tuple[str, ...]] = ("UNABLE_TO_LOCK_ROW",)


class WriteConflictError(SalesforceError):
    """A read-then-conditional-write kept finding the record changed by someone else (see
    :mod:`salesforce.consistency`). Nothing was written; the step is retried later."""

    retriable = True


class RolledBackError(SalesforceError):
    """This record was fine; another one in the same all-or-none request failed."""

    retriable = True
    codes: ClassVar[tuple[str, ...]] = (
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "PROCESSING_HALTED",
        "BATCH_PROCESSING_HALTED",
    )


# --- permanent request errors -----------------------------------------------------------------


class RequestError(SalesforceError):
    codes: ClassVar[tuple[str, ...]] = (
        "JSON_PARSER_ERROR",
        "METHOD_NOT_ALLOWED",
        "INVALID_INPUT",
        "BAD_REQUEST",
    )


class ValidationError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_EMAIL_ADDRESS",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "FIELD_FILTER_VALIDATION_EXCEPTION",
        "INVALID_STATUS",
    )


class InvalidFieldError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_FIELD_WHEN_USING_TEMPLATE",
    )


class MalformedIdError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "MALFORMED_ID",
        "INVALID_ID_FIELD",
        "INVALID_CROSS_REFERENCE_KEY",
    )


class QueryError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "MALFORMED_QUERY",
        "INVALID_QUERY_FILTER_OPERATOR",
        "INVALID_TYPE",
        "INVALID_QUERY_LOCATOR",
        "QUERY_TIMEOUT",
        "MALFORMED_SEARCH",
    )


class DuplicateError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "DUPLICATES_DETECTED",
        "DUPLICATE_VALUE",
        "DUPLICATE_EXTERNAL_ID",
    )


class MultipleMatchesError(RequestError):
    codes: ClassVar[tuple[str, ...]] = ("MULTIPLE_CHOICES",)


class NotFoundError(RequestError):
    codes: ClassVar[tuple[str, ...]] = ("NOT_FOUND", "ENTITY_IS_DELETED")


class ConvertedLeadError(RequestError):
    codes: ClassVar[tuple[str, ...]] = ("CANNOT_UPDATE_CONVERTED_LEAD",)


class PreconditionFailedError(RequestError):
    """HTTP 412: the record changed after the request's If-Unmodified-Since date. Sending the
    same request again fails the same way; the caller reads the record again first."""

    codes: ClassVar[tuple[str, ...]] = ("PRECONDITION_FAILED",)


class AccessDeniedError(RequestError):
    codes: ClassVar[tuple[str, ...]] = (
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "INSUFFICIENT_ACCESS",
        "API_DISABLED_FOR_ORG",
        "API_CURRENTLY_DISABLED",
        "FORBIDDEN",
        "FUNCTIONALITY_NOT_ENABLED",
    )


class UnknownError(SalesforceError):
    pass


def _all_subclasses(cls: type[SalesforceError]) -> Iterable[type[SalesforceError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


_REGISTRY: dict[str, type[SalesforceError]] = {
    code: cls for cls in _all_subclasses(SalesforceError) for code in cls.codes
}


def for_code(code: str | None, message: str = "") -> type[SalesforceError]:
    """The class for a Salesforce ``errorCode`` / ``statusCode`` / OAuth ``error``.

    REQUEST_LIMIT_EXCEEDED covers two different limits that only the message tells apart: the
    concurrent one clears in seconds, the daily one (or any limit we cannot name) in hours.
    """
    if code == "REQUEST_LIMIT_EXCEEDED":
        return ConcurrentLimitError if "concurrent" in message.lower() else DailyLimitError
    if code is None:
        return UnknownError
    return _REGISTRY.get(code, UnknownError)


def _for_status(status: int) -> type[SalesforceError]:
    if status == 300:
        return MultipleMatchesError
    if status == 401:
        return SessionExpiredError
    if status == 403:
        return AccessDeniedError
    if status == 404:
        return NotFoundError
    if status == 412:
        return PreconditionFailedError
    if status == 429:
        return ConcurrentLimitError
    if status >= 500:
        return ServerError
    return RequestError


# --- parsing response bodies ------------------------------------------------------------------

_NOT_VALID_FOR_API = "This session is not valid for use with the REST API"
_ID_IN_URL = re.compile(r"/([a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?)/?$")
#: What an error keeps of a body: enough for a person, bounded for headers and logs.
MAX_MESSAGE = 2000
MAX_CODE = 100
MAX_FIELDS = 100


def text_of(value: object, limit: int = MAX_MESSAGE) -> str:
    """A JSON value as message text: strings and numbers as they are, anything else (an object,
    an array) as nothing, so no body can make ``str()`` walk a deep structure. Cut at ``limit``."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
    else:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_of(value: object) -> str | None:
    code = text_of(value, MAX_CODE).strip()
    return code or None


def _field_names(value: object) -> tuple[str, ...]:
    """Field names from a string (comma-separated) or a list of strings; anything else: none."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    names = (name.strip() for item in items if isinstance(item, str) for name in item.split(","))
    return tuple(name[:MAX_CODE] for name in names if name)[:MAX_FIELDS]


def _make(
    cls: type[SalesforceError], message: str, code: str | None, status: int | None, **kw: Any
) -> SalesforceError:
    return cls(message or (code or "Salesforce error"), error_code=code, status=status, **kw)


def error_from_record(
    entry: object, *, status: int | None = None, ambiguous: bool = False
) -> SalesforceError:
    """One ``{message, errorCode|statusCode, fields}`` entry (REST, collections, SOAP results).

    Any JSON value is accepted: a bare string is the message (and the code, if it reads like
    one); anything else that is not an object gives an :class:`UnknownError` saying so."""
    if isinstance(entry, str):
        code = entry.strip() if re.fullmatch(r"\s*[A-Z][A-Z0-9_]{2,79}\s*", entry) else None
        entry = {"message": entry, "errorCode": code}
    if not isinstance(entry, Mapping):
        kind = type(entry).__name__
        return _make(
            _for_status(status) if status else UnknownError,
            f"unreadable error entry (a JSON {kind})",
            None,
            status,
            ambiguous=ambiguous,
        )
    code = _code_of(entry.get("errorCode")) or _code_of(entry.get("statusCode"))
    message = text_of(entry.get("message"))
    cls = for_code(code, message)
    if cls is UnknownError and status is not None and code is None:
        cls = _for_status(status)
    if status == 401 and _NOT_VALID_FOR_API in message:
        cls = SessionNotValidForApiError
    fields = _field_names(entry.get("fields"))
    matching = _duplicate_ids(entry.get("duplicateResult"))
    return _make(
        cls, message, code, status, fields=fields, ambiguous=ambiguous, matching_ids=matching
    )


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _duplicate_ids(duplicate_result: Any) -> tuple[str, ...]:
    if not isinstance(duplicate_result, Mapping):
        return ()
    ids: list[str] = []
    for match in _mappings(duplicate_result.get("matchResults")):
        for found in _mappings(match.get("matchRecords")):
            record = found.get("record")
            if isinstance(record, Mapping) and (found_id := _code_of(record.get("Id"))):
                ids.append(found_id)
    return tuple(ids[:MAX_FIELDS])


def error_from_response(
    status: int, body: bytes, content_type: str = "", *, ambiguous: bool = False
) -> SalesforceError:
    """Turn a failed response (REST, OAuth, SOAP or an HTML error page) into one exception."""
    text_type = content_type.lower()
    stripped = body.lstrip()
    if stripped[:1] in (b"[", b"{"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if data is not None:
            return error_from_json(status, data, ambiguous=ambiguous)
    if stripped.startswith(b"<") and b"Envelope" in stripped[:400] and b"Fault" in stripped:
        return error_from_soap_fault(status, body, ambiguous=ambiguous)
    # HTML from a CDN or load balancer, an empty body, or plain text.
    snippet = _text_snippet(body, html="html" in text_type or stripped[:1] == b"<")
    cls = _for_status(status)
    if status == 401 and _NOT_VALID_FOR_API.encode() in body:
        cls = SessionNotValidForApiError
    if status == 403 and stripped.startswith(b"Bad_OAuth_Token"):
        # The identity URL answers an expired token this way rather than with a 401.
        return SessionExpiredError(
            "Bad_OAuth_Token", error_code="INVALID_SESSION_ID", status=status, ambiguous=ambiguous
        )
    return _make(cls, snippet or f"HTTP {status}", None, status, ambiguous=ambiguous)


def error_from_json(status: int, data: Any, *, ambiguous: bool = False) -> SalesforceError:
    """A failed response's parsed JSON body, whatever its shape, as one exception."""
    if isinstance(data, list) and data and not (status == 300 and isinstance(data[0], str)):
        return error_from_record(data[0], status=status, ambiguous=ambiguous)
    if isinstance(data, list) and status == 300:
        ids = [m.group(1) for url in data if (m := _ID_IN_URL.search(text_of(url)))]
        return MultipleMatchesError(
            f"{len(data)} records match the external id",
            error_code="MULTIPLE_CHOICES",
            status=status,
            matching_ids=ids[:MAX_FIELDS],
        )
    if isinstance(data, Mapping) and (code := _code_of(data.get("error"))):
        message = text_of(data.get("error_description")) or code
        cls = for_code(code, message)
        if not issubclass(cls, AuthError):
            cls = ServerError if status >= 500 else AuthError
        return _make(cls, message, code, status, ambiguous=ambiguous)
    if isinstance(data, Mapping) and ("errorCode" in data or "statusCode" in data):
        return error_from_record(data, status=status, ambiguous=ambiguous)
    return _make(_for_status(status), f"HTTP {status}", None, status, ambiguous=ambiguous)


def _text_snippet(body: bytes, *, html: bool) -> str:
    text = body[:100_000].decode("utf-8", "replace")
    if html:
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:200]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes) -> ElementTree.Element:
    """Parse a SOAP body from the org we are talking to.

    The stdlib parser does not resolve external entities and, with the expat bundled since
    Python 3.7.1, refuses entity-expansion bombs, so it is safe for this input.
    """
    return ElementTree.fromstring(body)  # noqa: S314 - see the docstring


def error_from_soap_fault(status: int, body: bytes, *, ambiguous: bool = False) -> SalesforceError:
    """A SOAP ``<Fault>``: ``faultcode`` is ``sf:CODE``; ``exceptionCode`` in ``detail`` if any."""
    try:
        root = parse_xml(body)
    except ElementTree.ParseError:
        return ServerError(_text_snippet(body, html=True), status=status, ambiguous=ambiguous)
    values: dict[str, str] = {}
    for element in root.iter():
        name = _local(element.tag)
        if name in ("faultcode", "faultstring", "exceptionCode", "exceptionMessage") and (
            element.text
        ):
            values.setdefault(name, text_of(element.text.strip()))
    faultcode = values.get("faultcode", "").rsplit(":", 1)[-1]
    code = _code_of(values.get("exceptionCode") or faultcode)
    message = values.get("exceptionMessage") or values.get("faultstring") or "SOAP fault"
    cls = for_code(code, message)
    if cls is UnknownError and status >= 500 and code in (None, "Server"):
        cls = ServerError
    return _make(cls, message, code, status, ambiguous=ambiguous)
