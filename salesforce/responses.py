"""Salesforce's success bodies → typed results. Pure: bytes or parsed JSON in, data out.

Every body the client reads goes through one of these functions. Each checks the shape the REST
API documents and raises :class:`~salesforce.errors.UnexpectedResponseError` when it is not
there, so an answer of the wrong shape (a proxy's page with status 200, a broken emulator, a
field of the wrong type) is a typed, retriable error and never an ``AttributeError`` or a
``KeyError`` escaping into the engine. JSON nested deeper than :data:`MAX_DEPTH` is refused
too: nothing Salesforce documents nests that deep, and the records go on to templates and topics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.events import nesting_depth
from pipeline.ports import RecordOutcome, UpsertResult
from salesforce.errors import (
    SalesforceError,
    UnexpectedResponseError,
    error_from_json,
    error_from_record,
    text_of,
)

#: Deepest JSON accepted in an answer (a query with nested relationships and subqueries stays
#: far below).
MAX_DEPTH = 64

# Salesforce hands out instance-relative URLs for the next page; anything else (another host,
# a scheme) is refused, so that the bearer token is never sent anywhere but the instance.
_NEXT_PAGE = re.compile(r"/services/data/v[0-9]{2,3}\.0/[A-Za-z0-9_./%?=&+-]{1,2000}")


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def unexpected(what: str, value: object) -> UnexpectedResponseError:
    return UnexpectedResponseError(f"{what}: unexpected answer from Salesforce ({_kind(value)})")


def json_value(body: bytes, what: str) -> Any:
    """A success body parsed: empty is None, anything but JSON of a sane depth is refused."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = text_of(body[:80].decode("utf-8", "replace"), 80)
        raise UnexpectedResponseError(f"{what}: the answer is not JSON: {text!r}") from None
    if nesting_depth(data, stop_above=MAX_DEPTH) > MAX_DEPTH:
        raise UnexpectedResponseError(f"{what}: the answer nests deeper than {MAX_DEPTH} levels")
    return data


def json_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise unexpected(what, data)
    return data


def json_list(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise unexpected(what, data)
    return data


def _string(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UnexpectedResponseError(f"{what}: {key} is {_kind(value)}, not a string")
    return value


def created_id(data: Any) -> str:
    """``POST /sobjects/T/``: ``{"id", "success", "errors"}``."""
    return _string(json_object(data, "create"), "id", "create")


def upsert_result(data: Any, status: int) -> UpsertResult:
    """``PATCH /sobjects/T/field/value``: ``{"id", "created"}`` (201 created, 200 updated)."""
    body = json_object(data, "upsert")
    created = body.get("created", status == 201)
    return UpsertResult(id=_string(body, "id", "upsert"), created=created is True)


def record(data: Any, what: str = "record") -> dict[str, Any]:
    """One record (or describe, limits, identity answer) without ``attributes`` blocks."""
    stripped = strip_attributes(json_object(data, what))
    assert isinstance(stripped, dict)
    return stripped


def strip_attributes(value: Any) -> Any:
    """A record without Salesforce's ``attributes`` blocks, at every level of nesting (the
    depth is bounded by :func:`json_value`)."""
    if isinstance(value, dict):
        return {k: strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(v) for v in value]
    return value


def query_page(data: Any) -> tuple[list[dict[str, Any]], str | None]:
    """A query page: its records (without ``attributes``) and the next page's path, if any."""
    page = json_object(data, "query")
    records = page.get("records") or []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UnexpectedResponseError("query: records is not a list of objects")
    done = page.get("done", True)
    if not isinstance(done, bool):
        raise UnexpectedResponseError(f"query: done is {_kind(done)}, not a boolean")
    rows = [strip_attributes(r) for r in records]
    if done:
        return rows, None
    following = page.get("nextRecordsUrl")
    if not isinstance(following, str) or not _NEXT_PAGE.fullmatch(following):
        raise UnexpectedResponseError(
            "query: the page is not done but has no usable nextRecordsUrl"
        )
    return rows, following


def total_size(data: Any) -> int:
    """``SELECT COUNT() …``: ``totalSize``."""
    size = json_object(data, "count").get("totalSize")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnexpectedResponseError(f"count: totalSize is {_kind(size)}, not a count")
    return size


def composite_single(data: Any) -> Any:
    """The body of a one-subrequest Composite answer, or its error raised."""
    responses = json_object(data, "composite").get("compositeResponse")
    if not isinstance(responses, list) or len(responses) != 1:
        raise UnexpectedResponseError("composite: expected exactly one subrequest answer")
    sub = json_object(responses[0], "composite subrequest")
    status = sub.get("httpStatusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise UnexpectedResponseError("composite: the subrequest has no HTTP status")
    if status >= 300:
        raise error_from_json(status, sub.get("body"))
    return sub.get("body")


def collection_results(data: Any, count: int) -> list[Any]:
    """sObject Collections: exactly one result per record sent."""
    results = json_list(data, "sObject Collections")
    if len(results) != count:
        raise UnexpectedResponseError(
            f"sObject Collections returned {len(results)} results for {count} records"
        )
    return results


def record_outcome(result: Any, created: bool | None) -> RecordOutcome:
    """One Collections result: ``{"id", "success", "errors": [...], "created"?}``.

    ``created`` is what the call implies (a create, an update) or None to read it (upsert).
    """
    if not isinstance(result, dict):
        return RecordOutcome(None, unexpected("sObject Collections result", result))
    record_id = result.get("id")
    found_id = record_id if isinstance(record_id, str) and record_id else None
    if result.get("success") is True:
        if found_id is None:
            return RecordOutcome(None, unexpected("sObject Collections id", record_id))
        was_created = result.get("created") is True if created is None else created
        return RecordOutcome(found_id, None, created=was_created)
    errors = result.get("errors")
    entries = errors if isinstance(errors, list) else [errors] if errors else []
    error: SalesforceError = (
        error_from_record(entries[0])
        if entries
        else UnexpectedResponseError("the record failed without an error")
    )
    return RecordOutcome(found_id, error)
