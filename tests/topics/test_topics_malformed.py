"""A corpus of malformed inputs, each with the DecodeError code and reason it must produce."""

from __future__ import annotations

import orjson
import pytest

from topics.codecs import decode_event
from topics.errors import (
    DecodeError,
    InvalidField,
    MalformedJson,
    MissingField,
    PayloadTooLarge,
    UnknownEventType,
)


def j(doc: object) -> bytes:
    return orjson.dumps(doc)


def zen(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "type": "zen:event-type:ticket.created",
        "id": "z1",
        "subject": "zen:ticket:1",
        "detail": {"id": "1"},
    }
    doc.update(overrides)
    return j(doc)


OK = {"id": "e1", "type": "ticket.created", "ticket_id": "1"}

# (case name, raw bytes, expected code, fragment of the reason, path when the error has one)
CORPUS: list[tuple[str, bytes, str, str, str | None]] = [
    ("empty payload", b"", "malformed_json", "at byte 0", None),
    (
        "truncated object",
        b'{"id": "e1", "type": ',
        "malformed_json",
        "unexpected end of data",
        None,
    ),
    ("trailing garbage", j(OK) + b"x", "malformed_json", "unexpected content after document", None),
    ("not utf-8", b'{"id": "\xff"}', "malformed_json", "UTF-8", None),
    ("top-level array", b"[]", "invalid_field", "expected a JSON object, got list", "$"),
    ("top-level string", b'"ticket.created"', "invalid_field", "expected a JSON object", "$"),
    ("no id", j({**OK, "id": None}), "missing_field", "$.id is required", "$.id"),
    ("boolean id", j({**OK, "id": True}), "invalid_field", "got boolean", "$.id"),
    ("float id", j({**OK, "id": 1.5}), "invalid_field", "got number", "$.id"),
    ("blank id", j({**OK, "id": " "}), "invalid_field", "must not be empty", "$.id"),
    ("no type", j({"id": "e1", "ticket_id": "1"}), "missing_field", "$.type is required", "$.type"),
    ("numeric type", j({**OK, "type": 3}), "invalid_field", "expected a string", "$.type"),
    (
        "unknown generic family",
        j({**OK, "type": "order.created"}),
        "unknown_event_type",
        "'order.created'",
        None,
    ),
    (
        "upper-case generic type",
        j({**OK, "type": "Ticket.Created"}),
        "unknown_event_type",
        "lower case",
        None,
    ),
    ("bare family", j({**OK, "type": "ticket"}), "unknown_event_type", "'ticket'", None),
    (
        "no ticket id",
        j({"id": "e1", "type": "ticket.created", "ticket": {}}),
        "missing_field",
        "$.ticket.id (or $.ticket_id) is required",
        "$.ticket.id",
    ),
    (
        "ticket not an object",
        j({**OK, "ticket": "5"}),
        "invalid_field",
        "expected an object, got string",
        "$.ticket",
    ),
    (
        "ticket ids disagree",
        j({**OK, "ticket": {"id": "2"}}),
        "invalid_field",
        "disagrees",
        "$.ticket_id",
    ),
    (
        "tags not a list",
        j({**OK, "ticket": {"tags": "a,b"}}),
        "invalid_field",
        "expected an array of strings",
        "$.ticket.tags",
    ),
    (
        "tag not a string",
        j({**OK, "ticket": {"tags": ["a", 1]}}),
        "invalid_field",
        "got integer",
        "$.ticket.tags[1]",
    ),
    (
        "status not a string",
        j({**OK, "ticket": {"status": 2}}),
        "invalid_field",
        "expected a string",
        "$.ticket.status",
    ),
    (
        "requester email a number",
        j({**OK, "requester": {"email": 5}}),
        "invalid_field",
        "expected a string",
        "$.requester.email",
    ),
    (
        "requester a list",
        j({**OK, "requester": []}),
        "invalid_field",
        "expected an object, got array",
        "$.requester",
    ),
    (
        "attributes a list",
        j({**OK, "attributes": [1]}),
        "invalid_field",
        "expected an object",
        "$.attributes",
    ),
    (
        "interaction body an object",
        j({**OK, "interaction": {"body": {}}}),
        "invalid_field",
        "expected a string",
        "$.interaction.body",
    ),
    (
        "unsupported specversion",
        j({**OK, "specversion": "2.0"}),
        "invalid_field",
        "unsupported version '2.0'",
        "$.specversion",
    ),
    (
        "zendesk user event",
        zen(type="zen:event-type:user.created"),
        "unknown_event_type",
        "not a Zendesk ticket event",
        None,
    ),
    (
        "zendesk unknown ticket event",
        zen(type="zen:event-type:ticket.teleported"),
        "unknown_event_type",
        "unknown type",
        None,
    ),
    (
        "zendesk without detail",
        zen(detail=None),
        "missing_field",
        "$.detail is required",
        "$.detail",
    ),
    ("zendesk detail a string", zen(detail="1"), "invalid_field", "expected an object", "$.detail"),
    (
        "zendesk no ticket id anywhere",
        zen(subject=None, detail={}),
        "missing_field",
        "zen:ticket:<id>",
        "$.detail.id",
    ),
    (
        "zendesk odd subject",
        zen(subject="zen:user:1"),
        "invalid_field",
        "expected 'zen:ticket:<id>'",
        "$.subject",
    ),
    (
        "zendesk event not an object",
        zen(event=[1]),
        "invalid_field",
        "expected an object",
        "$.event",
    ),
    (
        "zendesk comment body a number",
        zen(event={"comment": {"body": 1}}),
        "invalid_field",
        "expected a string",
        "$.event.comment.body",
    ),
    (
        "zendesk requester_id a list",
        zen(detail={"id": "1", "requester_id": [1]}),
        "invalid_field",
        "string or integer id",
        "$.detail.requester_id",
    ),
]


@pytest.mark.parametrize(
    ("raw", "code", "fragment", "path"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_malformed_input_is_rejected_with_its_code(
    raw: bytes, code: str, fragment: str, path: str | None
) -> None:
    """Each malformed payload raises a DecodeError with the expected code, reason and path."""
    with pytest.raises(DecodeError) as info:
        decode_event(raw, topic="actionflows.tickets")
    error = info.value
    assert error.code == code
    assert fragment in error.reason
    assert getattr(error, "path", None) == path


def test_codes_match_the_classes() -> None:
    """Each code is raised by its own class, so callers may catch either."""
    classes = {
        "malformed_json": MalformedJson,
        "invalid_field": InvalidField,
        "missing_field": MissingField,
        "unknown_event_type": UnknownEventType,
    }
    for _, raw, code, _, _ in CORPUS:
        with pytest.raises(classes[code]):
            decode_event(raw, topic="t")


def test_oversized_payload_is_refused_before_parsing() -> None:
    """A payload over max_bytes raises PayloadTooLarge, even when it is not JSON."""
    with pytest.raises(PayloadTooLarge) as info:
        decode_event(b"x" * 11, topic="t", max_bytes=10)
    assert (info.value.code, info.value.size, info.value.limit) == ("payload_too_large", 11, 10)
    assert "11 bytes, the limit is 10" in info.value.reason


def test_malformed_json_reports_orjson_position() -> None:
    """MalformedJson carries orjson's message and the byte position."""
    with pytest.raises(MalformedJson) as info:
        decode_event(b'{"id": 1,, }', topic="t")
    assert info.value.position == 9
    assert info.value.message
