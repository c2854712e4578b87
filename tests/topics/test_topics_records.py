"""Output records, redaction of structured data and scrubbing of free text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.result import RunStatus, StepStatus
from topics.codecs import decode_event
from topics.errors import DecodeError
from topics.headers import DeadLetterContext, Stage, parse_dead_letter_headers
from topics.records import DeadLetterRecord, RunResultRecord, StepOutputRecord, StepSummary
from topics.redaction import MASK, SECRET_KEYS, Redactor, redact, scrub

AT = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def step_record(**overrides: Any) -> StepOutputRecord:
    base = StepOutputRecord(
        flow="new-lead",
        flow_version=3,
        run_id="run-1",
        event_id="e1",
        ticket_id="35436",
        step="create_lead",
        action="salesforce.create_record",
        object="lead",
        inputs={"LastName": "Quist", "Email": "nora@example.com", "auth": {"access_token": "t0k"}},
        outputs={"id": "00Q000000000001AAA"},
        status=StepStatus.SUCCEEDED,
        attempt=1,
        duration_ms=41.5,
        at=AT,
        salesforce_id="00Q000000000001AAA",
    )
    return replace(base, **overrides)


def test_step_output_serialises_with_schema_and_redacted_inputs() -> None:
    """The JSON has every field, a schema name, UTC time, and no secret or PII value."""
    doc = orjson.loads(step_record().to_bytes())
    assert doc["schema"] == "actionflows.step-output/1"
    assert doc["inputs"] == {"LastName": "Quist", "Email": MASK, "auth": {"access_token": MASK}}
    assert doc["at"] == "2026-11-25T12:00:00Z"
    assert doc["status"] == "succeeded"
    assert doc["error"] is None
    assert set(doc) >= {
        "flow",
        "flow_version",
        "run_id",
        "event_id",
        "ticket_id",
        "step",
        "action",
        "object",
        "outputs",
        "attempt",
        "duration_ms",
        "salesforce_id",
    }


def test_step_output_redaction_is_configurable() -> None:
    """A flow may publish emails by passing only the secret keys."""
    doc = orjson.loads(step_record().to_bytes(Redactor(SECRET_KEYS)))
    assert doc["inputs"]["Email"] == "nora@example.com"
    assert doc["inputs"]["auth"]["access_token"] == MASK


def test_step_output_error_is_redacted_too() -> None:
    """Error details pass through the same redaction."""
    record = step_record(status=StepStatus.FAILED, error={"errorCode": "X", "token": "abc"})
    assert orjson.loads(record.to_bytes())["error"] == {"errorCode": "X", "token": MASK}


def test_records_are_keyed_by_ticket() -> None:
    """Output records share the input's ordering key."""
    assert step_record().key == b"35436"


def test_run_result_serialises_its_steps() -> None:
    """The run result lists each step's status and Salesforce id."""
    record = RunResultRecord(
        flow="new-lead",
        version=3,
        run_id="run-1",
        event_id="e1",
        ticket_id="35436",
        status=RunStatus.DEAD_LETTER,
        steps=[StepSummary("find", StepStatus.SUCCEEDED), StepSummary("create", StepStatus.FAILED)],
        duration_ms=120.0,
        attempts=3,
        at=AT,
        failed_step="create",
    )
    doc = orjson.loads(record.to_bytes())
    assert doc["schema"] == "actionflows.run-result/1"
    assert doc["steps"] == [
        {"step": "find", "status": "succeeded", "salesforce_id": None},
        {"step": "create", "status": "failed", "salesforce_id": None},
    ]
    assert (doc["failed_step"], doc["attempts"], doc["status"]) == ("create", 3, "dead_letter")


def test_dead_letter_value_is_the_original_bytes() -> None:
    """The dead letter keeps key, value and trace headers; context replaces stale error headers."""
    original = b'{"id": "e1", "type": "ticket.created", "ticket_id": "35436"}'
    context = DeadLetterContext(
        "actionflows.tickets",
        2,
        17,
        Stage.STEP,
        "retries_exhausted",
        "salesforce.errors.ServerError",
        "503 after 5 attempts",
    )
    record = DeadLetterRecord(
        key=b"35436",
        value=original,
        context=context,
        original_headers=(("traceparent", b"00-aa"), ("actionflows.errors.flow", b"stale")),
    )
    assert record.to_bytes() is original
    assert record.headers[0] == ("traceparent", b"00-aa")
    assert parse_dead_letter_headers(record.headers) == context
    assert ("actionflows.errors.flow", b"stale") not in record.headers


def test_redact_is_case_insensitive_and_nested() -> None:
    """Keys match whatever their case, inside objects and lists, without touching the input."""
    data = {"PASSWORD": "p", "items": [{"Client_Secret": "s", "keep": 1}], "Phone": None}
    assert redact(data) == {
        "PASSWORD": MASK,
        "items": [{"Client_Secret": MASK, "keep": 1}],
        "Phone": None,
    }
    assert data["PASSWORD"] == "p"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("401 Unauthorized; Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGci"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("token refresh failed for Bearer 00D5g000004Dx!ARQAQ", "00D5g000004Dx"),
        ("POST /services/oauth2/token?refresh_token=5Aep861TSESvWeug&client_id=abc", "5Aep861"),
        ('body: {"access_token":"00Dxx!AQcAQH","instance_url":"https://na1"}', "00Dxx"),
        ("client_secret: 8843DE1F then grant_type=password&password=hunter2", "hunter2"),
        ('{"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}', "dXNlcjpwYXNz"),
    ],
)
def test_scrub_removes_credentials(text: str, secret: str) -> None:
    """Bearer tokens, Authorization values and token=… pairs are masked."""
    cleaned = scrub(text)
    assert secret not in cleaned
    assert MASK in cleaned


def test_scrub_leaves_ordinary_messages_alone() -> None:
    """A Salesforce error message without credentials is unchanged."""
    message = "INVALID_FIELD: No such column 'Foo__c' on entity 'Lead' (fields: Foo__c)"
    assert scrub(message) == message


@given(
    st.text(
        alphabet=st.characters(codec="ascii", exclude_characters='\r\n,;}"&'),
        min_size=8,
        max_size=40,
    ).filter(lambda s: s.strip() == s and " " not in s)
)
def test_scrub_masks_any_bearer_token(token: str) -> None:
    """Whatever the token, it does not survive after 'Authorization: Bearer'."""
    assert token not in scrub(f"Authorization: Bearer {token}\nnext line")


def test_dead_letter_for_a_decode_error_names_code_and_class() -> None:
    """A refused input becomes a decode-stage dead letter whose reason is the error code."""
    raw = b'{"id": "e1", "type": '
    with pytest.raises(DecodeError) as info:
        decode_event(raw, topic="actionflows.tickets")
    record = DeadLetterRecord.for_decode_error(
        info.value,
        key=b"35436",
        value=raw,
        headers=[("traceparent", b"00-aa")],
        topic="actionflows.tickets",
        partition=1,
        offset=42,
        timestamp_ms=1_764_000_000_000,
    )
    context = parse_dead_letter_headers(record.headers)
    assert record.to_bytes() == raw
    assert (context.stage, context.offset) == (Stage.DECODE, 42)
    assert context.reason == "decode.malformed_json"
    assert context.exception_class == "topics.errors.MalformedJson"
    assert "unexpected end of data" in context.exception_message
