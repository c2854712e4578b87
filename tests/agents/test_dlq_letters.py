"""Dead letters as the dlq tool reads them, and the record a redrive re-injects. No broker."""

from __future__ import annotations

import orjson
import pytest

from agents.ops.letters import (
    DeadLetter,
    LetterFilter,
    NotRedrivable,
    how,
    marker_key,
    marker_value,
    parse_marker,
    redrive_record,
)
from topics import headers as h
from topics.errors import MalformedJson
from topics.records import DeadLetterRecord

TRACE = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
NOW_MS = 1_800_000_000_000


def step_letter(**overrides: object) -> DeadLetter:
    context = h.DeadLetterContext(
        topic="af.tickets", partition=1, offset=42, stage=h.Stage.STEP,
        reason="FIELD_CUSTOM_VALIDATION_EXCEPTION", exception_class="salesforce.errors.ValidationError",
        exception_message="Company is required", event_id="e1", flow="create-lead", flow_version=1,
        step="create_lead", attempts=1, salesforce_error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
    )  # fmt: skip
    fields = {"original_headers": (TRACE,), **overrides}
    record = DeadLetterRecord(b"T1", b'{"id": "e1"}', context, **fields)  # type: ignore[arg-type]
    return DeadLetter.of(0, 7, NOW_MS, record.key, record.value, record.headers)


def decode_letter() -> DeadLetter:
    record = DeadLetterRecord.for_decode_error(
        MalformedJson("unexpected end", 9), key=b"T2", value=b"{not json", headers=[TRACE],
        topic="af.interactions", partition=0, offset=3,
    )  # fmt: skip
    return DeadLetter.of(0, 8, NOW_MS, record.key, record.value, record.headers)


def test_a_dead_letter_reads_its_context_from_the_headers() -> None:
    """Position, ticket and the error code (the Salesforce one first) come from the record."""
    letter = step_letter()
    assert (letter.position, letter.ticket) == ("0:7", "T1")
    assert letter.context is not None
    assert letter.context.flow == "create-lead"
    assert letter.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert decode_letter().error_code == "decode.malformed_json"


def test_a_letter_with_broken_headers_says_why_and_cannot_be_redriven() -> None:
    """Missing context is a problem to show, not a crash; a redrive refuses it."""
    letter = DeadLetter.of(0, 1, None, b"k", b"v", [(h.ERROR_TOPIC, b"af.tickets")])
    assert letter.context is None
    assert letter.problem is not None
    with pytest.raises(NotRedrivable, match="0:1"):
        redrive_record(letter, dead_letter_topic="af.dead-letters", redrive_id="r", now_ms=0)


def test_filters_match_codes_ignoring_case_and_combine_with_and() -> None:
    """A code matches the reason or the errorCode; flow, step and stage narrow further."""
    letter = step_letter()
    assert LetterFilter(error_codes=frozenset({"field_custom_validation_exception"})).matches(
        letter
    )
    assert LetterFilter(flows=frozenset({"create-lead"}), stages=frozenset({"step"})).matches(
        letter
    )
    assert not LetterFilter(flows=frozenset({"create-lead"}), steps=frozenset({"x"})).matches(
        letter
    )
    assert LetterFilter(error_codes=frozenset({"malformed_json"})).matches(decode_letter())
    assert LetterFilter(error_codes=frozenset({"decode.malformed_json"})).matches(decode_letter())
    unreadable = DeadLetter.of(0, 1, None, None, b"", [])
    assert LetterFilter().matches(unreadable)
    assert not LetterFilter(stages=frozenset({"decode"})).matches(unreadable)


def test_a_step_failure_is_redriven_as_a_retry_of_its_flow_at_the_failed_step() -> None:
    """Same key and value, original partition of the input topic, retry headers for the flow."""
    sent = redrive_record(
        step_letter(), dead_letter_topic="af.dead-letters", redrive_id="redrive-1", now_ms=NOW_MS
    )
    assert (sent.topic, sent.partition, sent.key, sent.value) == (
        "af.tickets",
        1,
        b"T1",
        b'{"id": "e1"}',
    )
    retry = h.parse_retry_headers(sent.headers)
    assert retry == h.RetryContext(
        attempt=0, not_before_ms=NOW_MS, origin_topic="af.tickets", origin_partition=1,
        origin_offset=42, flow="create-lead", resume_step="create_lead",
    )  # fmt: skip
    assert TRACE in sent.headers
    assert not [name for name, _ in sent.headers if name.startswith(h.ERRORS)]
    assert h.get(sent.headers, h.REDRIVE_ID) == b"redrive-1"
    assert h.get(sent.headers, h.REDRIVE_FROM) == b"af.dead-letters:0:7"
    assert how(sent) == "retry of flow create-lead at create_lead"


def test_a_decode_failure_is_redriven_as_a_plain_record() -> None:
    """No flow: no retry headers, so the engine decodes and routes it again."""
    sent = redrive_record(decode_letter(), dead_letter_topic="d", redrive_id="r", now_ms=NOW_MS)
    assert (sent.topic, sent.partition, sent.value) == ("af.interactions", 0, b"{not json")
    assert h.parse_retry_headers(sent.headers) is None
    assert how(sent).startswith("plain record")


def test_a_letter_that_was_a_retry_goes_back_to_its_origin_with_fresh_retry_headers() -> None:
    """Old retry headers are replaced: attempt 0, due now, origin kept from the first input."""
    old = h.RetryContext(3, 5, "af.tickets", 1, 42, "create-lead", "find_lead")
    letter = step_letter(original_headers=(TRACE, *h.retry_headers(old)))
    sent = redrive_record(letter, dead_letter_topic="d", redrive_id="r", now_ms=NOW_MS)
    retry = h.parse_retry_headers(sent.headers)
    assert retry is not None
    assert (retry.attempt, retry.not_before_ms, retry.resume_step) == (0, NOW_MS, "create_lead")
    assert len([n for n, _ in sent.headers if n == h.RETRY_ATTEMPT]) == 1


def test_a_marker_is_keyed_by_the_letter_position_and_reads_back() -> None:
    """The compacted marker topic holds one JSON marker per redriven letter."""
    letter = step_letter()
    sent = redrive_record(letter, dead_letter_topic="d", redrive_id="redrive-1", now_ms=NOW_MS)
    assert marker_key(letter) == b"0:7"
    marker = parse_marker(marker_value(letter, sent, redrive_id="redrive-1", now_ms=NOW_MS))
    assert marker == {
        "redrive_id": "redrive-1", "at_ms": NOW_MS, "topic": "af.tickets", "partition": 1,
        "flow": "create-lead", "step": "create_lead",
    }  # fmt: skip
    assert parse_marker(None) is None
    assert parse_marker(orjson.dumps([1])) is None
