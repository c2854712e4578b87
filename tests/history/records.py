"""Records as the worker publishes them (the real record classes), as the indexer would see them."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.history.rows import Source
from pipeline.result import RunStatus, StepStatus
from topics import headers as h
from topics.records import DeadLetterRecord, RunResultRecord, StepOutputRecord, StepSummary

T0_MS = 1_800_000_000_000
RUNS = "actionflows.run-results"
STEPS = "actionflows.step-outputs"
LETTERS = "actionflows.dead-letters"
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def run_result(
    offset: int,
    *,
    run_id: str = "run1-a",
    ticket: str = "35436",
    event: str = "e1",
    flow: str = "create-lead",
    status: RunStatus = RunStatus.SUCCEEDED,
    at_ms: int = T0_MS,
    failed_step: str | None = None,
) -> Source:
    record = RunResultRecord(
        flow=flow, version=1, run_id=run_id, event_id=event, ticket_id=ticket, status=status,
        steps=[StepSummary("find_lead", StepStatus.SUCCEEDED, None)], duration_ms=12.5,
        attempts=1, at=at(at_ms), failed_step=failed_step,
        published={"lead_id": "00Q000000000001AAA", "api_key": "k"},
    )  # fmt: skip
    return Source(RUNS, 0, offset, at_ms, ticket.encode(), record.to_bytes(),
                  (("traceparent", TRACEPARENT),))  # fmt: skip


def step_output(
    offset: int,
    step: str,
    status: StepStatus = StepStatus.SUCCEEDED,
    *,
    run_id: str = "run1-a",
    ticket: str = "35436",
    at_ms: int = T0_MS,
) -> Source:
    record = StepOutputRecord(
        flow="create-lead", flow_version=1, run_id=run_id, event_id="e1", ticket_id=ticket,
        step=step, action="salesforce.create_record", object="lead",
        inputs={"name": "Ada", "email": "ada@example.com", "password": "hunter2"},
        outputs={"id": "00Q000000000001AAA"}, status=status, attempt=1, duration_ms=3.25,
        at=at(at_ms), salesforce_id="00Q000000000001AAA", idempotency_key="af1-x",
    )  # fmt: skip
    return Source(STEPS, 0, offset, at_ms, ticket.encode(), record.to_bytes(), ())


def dead_letter(
    offset: int, *, ticket: str = "35436", reason: str = "malformed_json", at_ms: int = T0_MS
) -> Source:
    context = h.DeadLetterContext(
        topic="actionflows.tickets", partition=0, offset=41, stage=h.Stage.DECODE, reason=reason,
        exception_class="topics.errors.DecodeError", exception_message="unexpected end of data",
        timestamp_ms=at_ms,
    )  # fmt: skip
    letter = DeadLetterRecord(ticket.encode(), b"{not json", context, ())
    return Source(LETTERS, 0, offset, at_ms, ticket.encode(), letter.to_bytes(), letter.headers)
