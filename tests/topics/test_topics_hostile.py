"""Whatever a producer sends, the decoder answers with an Event or a DecodeError, and a DecodeError
always makes a readable dead letter. Fuzzed with random, deep, invalid and huge input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import MAX_DEPTH, Event, nesting_depth
from pipeline.result import RunStatus
from tests.json_strategies import json_documents
from topics import codecs
from topics.codecs import decode_event, encode_event
from topics.errors import DecodeError, TooDeep
from topics.headers import Stage, parse_dead_letter_headers
from topics.records import DeadLetterRecord, RunResultRecord

TOPIC = "actionflows.tickets"


def nested(depth: int) -> str:
    """JSON text of ``depth`` levels of arrays and objects (alternating) around a 1."""
    openers = ["[" if level % 2 else '{"a":' for level in range(depth)]
    closers = ["]" if level % 2 else "}" for level in reversed(range(depth))]
    return "".join(openers) + "1" + "".join(closers)


def envelope(depth: int) -> bytes:
    """A valid generic event whose whole document nests exactly ``depth`` (≥ 3) levels."""
    head = '{"id": "e1", "type": "ticket.created", "ticket_id": "7", "attributes": {"x": '
    raw = (head + nested(depth - 2) + "}}").encode()
    if depth < 1024:
        assert nesting_depth(orjson.loads(raw)) == depth
    return raw


def test_nesting_up_to_the_bound_decodes_and_one_more_level_does_not() -> None:
    """64 levels is an event; 65 is too_deep, a DecodeError."""
    assert isinstance(decode_event(envelope(MAX_DEPTH), topic=TOPIC), Event)
    with pytest.raises(TooDeep) as caught:
        decode_event(envelope(MAX_DEPTH + 1), topic=TOPIC)
    assert caught.value.code == "too_deep"
    assert caught.value.topic == TOPIC


@pytest.mark.parametrize("depth", [1000, 1025, 100_000])
def test_a_deeply_nested_event_is_too_deep_not_a_crash(depth: int) -> None:
    """Within orjson's own limit (1024) or beyond it, deep input is too_deep."""
    with pytest.raises(TooDeep):
        decode_event(envelope(depth), topic=TOPIC)


def test_without_the_bound_a_deep_event_cannot_be_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Negative control: with the bound lifted, the 1,000-deep event decodes, and a run result
    that publishes its attributes cannot even be serialised (orjson stops at 254 levels)."""
    monkeypatch.setattr(codecs, "MAX_DEPTH", 10_000)
    event = decode_event(envelope(1000), topic=TOPIC)
    record = RunResultRecord(
        "f", 1, "r", event.id, event.ticket_id, RunStatus.SUCCEEDED, [], 1.0, 1,
        datetime.now(UTC), published={"attributes": event.attributes},
    )  # fmt: skip
    with pytest.raises(TypeError, match="Recursion limit"):
        record.to_bytes()


def assert_decodes_or_dead_letters(raw: bytes) -> None:
    """The property: an Event that can be used and re-encoded, or a DecodeError that makes a
    dead letter whose headers parse back."""
    event: Event | None = None
    failure: DecodeError | None = None
    try:
        event = decode_event(raw, topic=TOPIC)
    except DecodeError as error:
        failure = error
    if failure is not None:
        letter = DeadLetterRecord.for_decode_error(
            failure, key=None, value=raw, headers=[], topic=TOPIC, partition=0, offset=1
        )
        context = parse_dead_letter_headers(letter.headers)
        assert (context.stage, context.reason) == (Stage.DECODE, f"decode.{failure.code}")
        assert letter.to_bytes() is raw
        return
    assert event is not None
    assert nesting_depth(event.as_context()) <= MAX_DEPTH
    assert decode_event(encode_event(event), topic=TOPIC).id == event.id


json_values = json_documents()
ids = st.text(max_size=6) | st.integers(-5, 10**6) | json_values
event_types = st.sampled_from(
    [
        "ticket.created",
        "interaction.call",
        "zen:event-type:ticket.created",
        "zen:event-type:ticket.status_changed",
        "zen:event-type:user.created",
        "Ticket.Created",
        "",
    ]
)
people = (
    st.fixed_dictionaries({}, optional=dict.fromkeys(("id", "name", "email", "phone"), ids))
    | json_values
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "2.0"]) | json_values,
        "id": ids,
        "type": event_types | json_values,
        "ticket_id": ids,
        "ticket": st.fixed_dictionaries(
            {}, optional={"id": ids, "subject": ids, "status": ids, "tags": json_values}
        )
        | json_values,
        "requester": people,
        "organization": people,
        "interaction": json_values,
        "attributes": json_values,
        "subject": st.sampled_from(["zen:ticket:42", "zen:ticket:x"]) | json_values,
        "detail": st.fixed_dictionaries(
            {},
            optional={
                "id": ids,
                "requester_id": ids,
                "status": ids,
                "via": json_values,
                "requester": people,
            },
        )
        | json_values,
        "event": st.fixed_dictionaries(
            {}, optional={"current": json_values, "previous": json_values, "comment": json_values}
        )
        | json_values,
    },
)


good_ids = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=6)
generic_events = st.fixed_dictionaries(
    {
        "id": good_ids,
        "type": st.sampled_from(["ticket.created", "interaction.call"]),
        "ticket_id": good_ids,
    },
    optional={
        "requester": people,
        "organization": people,
        "interaction": json_values,
        "attributes": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        "ticket": st.fixed_dictionaries({}, optional={"subject": ids, "tags": json_values}),
    },
)
zendesk_events = st.fixed_dictionaries(
    {
        "id": good_ids,
        "type": st.sampled_from(
            ["zen:event-type:ticket.created", "zen:event-type:ticket.status_changed"]
        ),
        "detail": st.fixed_dictionaries(
            {"id": st.integers(1, 10**6)},
            optional={"requester_id": ids, "status": ids, "via": json_values, "description": ids},
        ),
    },
    optional={
        "event": st.fixed_dictionaries(
            {}, optional={"current": json_values, "previous": json_values, "comment": json_values}
        ),
        "attributes": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        "requester": people,
    },
)


@settings(max_examples=400, deadline=None)
@given(generic_events | zendesk_events)
def test_any_nearly_valid_event_decodes_or_dead_letters(doc: dict[str, Any]) -> None:
    """Valid required fields, anything in the optional ones: the paths past the first check."""
    assert_decodes_or_dead_letters(json.dumps(doc).encode())


@settings(max_examples=400, deadline=None)
@given(documents)
def test_any_event_shaped_document_decodes_or_dead_letters(doc: dict[str, Any]) -> None:
    """Every field of either format, of any JSON type."""
    assert_decodes_or_dead_letters(json.dumps(doc).encode())


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_decodes_or_dead_letters(value: Any) -> None:
    """Arrays, scalars, objects of any shape."""
    assert_decodes_or_dead_letters(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_dead_letter(raw: bytes) -> None:
    """Random bytes, invalid UTF-8 included."""
    assert_decodes_or_dead_letters(raw)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.sampled_from(["[", '{"a":', '{"attributes":']))
def test_any_depth_decodes_or_dead_letters(depth: int, opener: str) -> None:
    """Nesting of any depth, closed or not."""
    closer = {"[": "]", '{"a":': "}", '{"attributes":': "}"}[opener]
    assert_decodes_or_dead_letters((opener * depth + "1" + closer * depth).encode())
    assert_decodes_or_dead_letters((opener * depth).encode())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1_100_000), st.sampled_from(["subject", "attributes", "id"]))
def test_huge_strings_decode_or_dead_letter(size: int, field: str) -> None:
    """Strings up to past the size limit: an event, or payload_too_large."""
    doc: dict[str, Any] = {"id": "e1", "type": "ticket.created", "ticket": {"id": "7"}}
    if field == "subject":
        doc["ticket"]["subject"] = "x" * size
    elif field == "attributes":
        doc["attributes"] = {"note": "é" * (size // 2)}
    else:
        doc["id"] = "i" * max(size, 1)
    assert_decodes_or_dead_letters(json.dumps(doc).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=4), st.integers(0, 60))
def test_invalid_utf8_inside_a_valid_event_is_malformed(junk: bytes, at: int) -> None:
    """Bytes spliced into a string of a valid event: decoded only if still valid UTF-8 JSON."""
    raw = b'{"id": "e1", "type": "ticket.created", "ticket_id": "7", "ticket": {"subject": "'
    assert_decodes_or_dead_letters(
        raw[: len(raw) - 1 - at % 10] + junk + raw[-1 - at % 10 :] + b'"}}'
    )
