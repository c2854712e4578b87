"""Header conventions: dead-letter context, retry and replay headers, and their parsers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topics import headers as h
from topics.errors import HeaderError
from topics.headers import DeadLetterContext, ReplayMarker, RetryContext, Stage

CONTEXT = DeadLetterContext(
    topic="actionflows.tickets",
    partition=3,
    offset=1207,
    stage=Stage.STEP,
    reason="INVALID_FIELD",
    exception_class="salesforce.errors.InvalidField",
    exception_message="No such column 'Foo__c' on entity 'Lead'",
    timestamp_ms=1_764_000_000_000,
    event_id="01HNXXXX",
    flow="new-lead",
    flow_version=3,
    step="create_lead",
    attempts=1,
    salesforce_error_code="INVALID_FIELD",
    salesforce_fields=("Foo__c", "Bar__c"),
)


def test_dead_letter_header_names_mirror_kafka_connect() -> None:
    """The headers use the actionflows.errors.* names documented beside Connect's."""
    names = [name for name, _ in h.dead_letter_headers(CONTEXT)]
    assert names == [
        "actionflows.errors.topic",
        "actionflows.errors.partition",
        "actionflows.errors.offset",
        "actionflows.errors.timestamp",
        "actionflows.errors.stage",
        "actionflows.errors.reason",
        "actionflows.errors.exception.class.name",
        "actionflows.errors.exception.message",
        "actionflows.errors.event.id",
        "actionflows.errors.flow",
        "actionflows.errors.flow.version",
        "actionflows.errors.step",
        "actionflows.errors.attempts",
        "actionflows.errors.salesforce.errorCode",
        "actionflows.errors.salesforce.fields",
    ]
    values = dict(h.dead_letter_headers(CONTEXT))
    assert values["actionflows.errors.partition"] == b"3"
    assert values["actionflows.errors.salesforce.fields"] == b"Foo__c,Bar__c"


def test_optional_dead_letter_headers_are_omitted() -> None:
    """A decode failure has no flow, step or Salesforce headers at all."""
    context = DeadLetterContext(
        "t",
        0,
        5,
        Stage.DECODE,
        "malformed_json",
        "topics.errors.MalformedJson",
        "unexpected end of data at byte 4",
    )
    names = {name for name, _ in h.dead_letter_headers(context)}
    assert not names & {
        h.ERROR_FLOW,
        h.ERROR_STEP,
        h.ERROR_SF_CODE,
        h.ERROR_SF_FIELDS,
        h.ERROR_ATTEMPTS,
    }
    assert h.parse_dead_letter_headers(h.dead_letter_headers(context)) == context


def test_exception_messages_are_scrubbed_and_truncated() -> None:
    """No credential and no more than MAX_MESSAGE_CHARS characters reach the header."""
    message = "refresh failed: access_token=00Dxx!AQ4 Authorization: Bearer abc\n" + "x" * 5000
    value = dict(h.dead_letter_headers(replace(CONTEXT, exception_message=message)))
    text = value[h.ERROR_EXCEPTION_MESSAGE].decode()
    assert "00Dxx" not in text
    assert "abc" not in text
    assert len(text) == h.MAX_MESSAGE_CHARS
    assert text.endswith("…")


def test_field_names_with_commas_are_refused() -> None:
    """A field list that would not parse back is an error at build time."""
    with pytest.raises(ValueError, match="without commas"):
        h.dead_letter_headers(replace(CONTEXT, salesforce_fields=("a,b",)))


def test_missing_required_dead_letter_header_is_named() -> None:
    """Parsing names the missing header."""
    partial = [(k, v) for k, v in h.dead_letter_headers(CONTEXT) if k != h.ERROR_OFFSET]
    with pytest.raises(HeaderError, match=r"actionflows\.errors\.offset: missing"):
        h.parse_dead_letter_headers(partial)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (h.ERROR_PARTITION, b"three", "decimal integer"),
        (h.ERROR_OFFSET, b"--5", "decimal integer"),
        (h.ERROR_STAGE, b"teleport", "unknown stage"),
        (h.ERROR_TOPIC, b"\xff", "not UTF-8"),
    ],
)
def test_bad_dead_letter_header_values_are_refused(name: str, value: bytes, message: str) -> None:
    """A header value that does not parse raises HeaderError naming it."""
    headers = h.replace_headers(h.dead_letter_headers(CONTEXT), [(name, value)])
    with pytest.raises(HeaderError, match=message) as info:
        h.parse_dead_letter_headers(headers)
    assert info.value.header == name


_safe = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=","), min_size=1, max_size=20
)
# Free of anything scrub() would mask (no ':' or '=', and never the word bearer).
_plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC_.'0123456789", max_size=80).filter(
    lambda s: "bearer" not in s.lower()
)
_opt = st.none() | _safe
_int = st.integers(0, 2**62)


@given(
    st.builds(
        DeadLetterContext,
        topic=_safe,
        partition=_int,
        offset=_int,
        stage=st.sampled_from(Stage),
        reason=_safe,
        exception_class=_safe,
        exception_message=_plain,
        timestamp_ms=st.none() | _int,
        event_id=_opt,
        flow=_opt,
        flow_version=st.none() | _int,
        step=_opt,
        attempts=st.none() | _int,
        salesforce_error_code=_opt,
        salesforce_fields=st.lists(_safe, max_size=4).map(tuple),
    )
)
def test_dead_letter_context_round_trips(context: DeadLetterContext) -> None:
    """parse(build(ctx)) == ctx for messages free of credentials."""
    assert h.parse_dead_letter_headers(h.dead_letter_headers(context)) == context


@given(
    st.builds(
        RetryContext,
        attempt=st.integers(1, 100),
        not_before_ms=_int,
        origin_topic=_safe,
        origin_partition=_int,
        origin_offset=_int,
        flow=_opt,
        resume_step=_opt,
    )
)
def test_retry_context_round_trips(context: RetryContext) -> None:
    """parse_retry_headers(retry_headers(ctx)) == ctx."""
    assert h.parse_retry_headers(h.retry_headers(context)) == context


def test_retry_header_names() -> None:
    """Retry headers live under actionflows.retry.*."""
    context = RetryContext(2, 1_764_000_030_000, "actionflows.tickets", 1, 99, "new-lead", "create")
    assert [name for name, _ in h.retry_headers(context)] == [
        "actionflows.retry.attempt",
        "actionflows.retry.not-before",
        "actionflows.retry.origin.topic",
        "actionflows.retry.origin.partition",
        "actionflows.retry.origin.offset",
        "actionflows.retry.flow",
        "actionflows.retry.resume-step",
    ]


def test_a_record_without_retry_headers_is_not_a_retry() -> None:
    """No attempt header means no retry context."""
    assert h.parse_retry_headers([("traceparent", b"x")]) is None


@given(_safe, st.booleans())
def test_replay_marker_round_trips(replay_id: str, dry_run: bool) -> None:
    """parse_replay(replay_headers(m)) == m."""
    marker = ReplayMarker(replay_id, dry_run)
    assert h.parse_replay(h.replay_headers(marker)) == marker


def test_replay_marker_absent_or_bad() -> None:
    """No marker gives None; a bad dry-run flag is refused; an empty id cannot be built."""
    assert h.parse_replay([]) is None
    with pytest.raises(HeaderError, match="true or false"):
        h.parse_replay([(h.REPLAY, b"r1"), (h.REPLAY_DRY_RUN, b"yes")])
    with pytest.raises(ValueError, match="must not be empty"):
        h.replay_headers(ReplayMarker(""))


def test_last_header_wins_and_replace_keeps_others() -> None:
    """get() reads the last value; replace_headers swaps names and keeps the rest in order."""
    headers = [("a", b"1"), ("b", b"2"), ("a", b"3")]
    assert h.get(headers, "a") == b"3"
    assert h.replace_headers(headers, [("a", b"9")]) == [("b", b"2"), ("a", b"9")]
    assert h.without_prefix([("actionflows.errors.x", b""), ("k", b"")], h.ERRORS) == [("k", b"")]


def test_qualified_name_names_the_class() -> None:
    """Builtins keep a bare name, others are module-qualified."""
    assert h.qualified_name(ValueError("x")) == "ValueError"
    assert h.qualified_name(HeaderError("h", "r")) == "topics.errors.HeaderError"
