"""The records the service publishes: step outputs, run results and dead letters.

Step outputs and run results are JSON (orjson) with a ``schema`` field naming their version;
they are keyed by ticket id, like the inputs, so a ticket's history reads in order. Step
inputs, outputs, error details and a run's published values are redacted when serialised (by a
:class:`topics.redaction.Redactor`, which the engine teaches the event's own sensitive values),
so a caller cannot forget to.

A dead letter's value is the original record's bytes, unchanged (as Kafka Connect does):
whatever tool can read the input topic can read and redrive the dead letter. Its context
travels in ``actionflows.errors.*`` headers (:mod:`topics.headers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pipeline.result import RunStatus, StepStatus
from topics.errors import DecodeError
from topics.headers import (
    ERRORS,
    DeadLetterContext,
    Headers,
    Stage,
    dead_letter_headers,
    qualified_name,
    without_prefix,
)
from topics.redaction import Redactor

STEP_OUTPUT_SCHEMA = "actionflows.step-output/1"
RUN_RESULT_SCHEMA = "actionflows.run-result/1"

_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


_DEFAULT_REDACTOR = Redactor()


@dataclass(frozen=True, slots=True)
class StepOutputRecord:
    """What one step did for one event."""

    flow: str
    flow_version: int
    run_id: str
    event_id: str
    ticket_id: str
    step: str
    action: str  # e.g. "salesforce.create_record"
    object: str | None  # e.g. "lead"; None for steps that are not about one sObject
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    status: StepStatus
    attempt: int
    duration_ms: float
    at: datetime
    salesforce_id: str | None = None
    error: Mapping[str, Any] | None = None  # {"errorCode", "message", "fields"} when failed
    idempotency_key: str | None = None  # the external id the step's write was keyed by

    @property
    def key(self) -> bytes:
        return self.ticket_id.encode("utf-8")

    def to_dict(self, redactor: Redactor = _DEFAULT_REDACTOR) -> dict[str, Any]:
        # The step's own inputs hold what Salesforce may echo back in an error message.
        redactor = redactor.learning(self.inputs)
        return {
            "schema": STEP_OUTPUT_SCHEMA,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "run_id": self.run_id,
            "event_id": self.event_id,
            "ticket_id": self.ticket_id,
            "step": self.step,
            "action": self.action,
            "object": self.object,
            "inputs": redactor.mapping(self.inputs),
            "outputs": redactor.mapping(self.outputs),
            "status": self.status.value,
            "attempt": self.attempt,
            "duration_ms": self.duration_ms,
            "salesforce_id": self.salesforce_id,
            "error": None if self.error is None else redactor.mapping(self.error),
            "idempotency_key": self.idempotency_key,
            "at": self.at,
        }

    def to_bytes(self, redactor: Redactor = _DEFAULT_REDACTOR) -> bytes:
        return orjson.dumps(self.to_dict(redactor), option=_JSON_OPTIONS)


@dataclass(frozen=True, slots=True)
class StepSummary:
    step: str
    status: StepStatus
    salesforce_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunResultRecord:
    """How one flow run over one event ended."""

    flow: str
    version: int
    run_id: str
    event_id: str
    ticket_id: str
    status: RunStatus
    steps: Sequence[StepSummary]
    duration_ms: float
    attempts: int
    at: datetime
    failed_step: str | None = None
    # The flow's ``publish:`` values: what the flow author chose to hand downstream consumers
    # (a Slack or Jira bridge). Redacted like everything else; a deployment that must publish
    # personal data configures smaller redaction keys.
    published: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return self.ticket_id.encode("utf-8")

    def to_dict(self, redactor: Redactor = _DEFAULT_REDACTOR) -> dict[str, Any]:
        return {
            "published": redactor.mapping(self.published),
            "schema": RUN_RESULT_SCHEMA,
            "flow": self.flow,
            "version": self.version,
            "run_id": self.run_id,
            "event_id": self.event_id,
            "ticket_id": self.ticket_id,
            "status": self.status.value,
            "steps": [
                {"step": s.step, "status": s.status.value, "salesforce_id": s.salesforce_id}
                for s in self.steps
            ],
            "failed_step": self.failed_step,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "at": self.at,
        }

    def to_bytes(self, redactor: Redactor = _DEFAULT_REDACTOR) -> bytes:
        return orjson.dumps(self.to_dict(redactor), option=_JSON_OPTIONS)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """The original record, parked: same key, same value, original headers plus context."""

    key: bytes | None
    value: bytes
    context: DeadLetterContext
    original_headers: tuple[tuple[str, bytes], ...] = field(default=())

    @classmethod
    def for_decode_error(
        cls,
        error: DecodeError,
        *,
        key: bytes | None,
        value: bytes,
        headers: Iterable[tuple[str, bytes]],
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int | None = None,
    ) -> DeadLetterRecord:
        """The dead letter for an input record :func:`topics.decode_event` refused; its reason
        is ``decode.<code>`` (``decode.malformed_json``, ``decode.too_deep`` …)."""
        context = DeadLetterContext(
            topic=topic,
            partition=partition,
            offset=offset,
            stage=Stage.DECODE,
            reason=f"{Stage.DECODE.value}.{error.code}",
            exception_class=qualified_name(error),
            exception_message=error.reason,
            timestamp_ms=timestamp_ms,
        )
        return cls(key, value, context, tuple(headers))

    def to_bytes(self) -> bytes:
        """The original payload, byte for byte."""
        return self.value

    @property
    def headers(self) -> Headers:
        """Original headers (trace context included), any ``actionflows.errors.*`` left from an
        earlier dead-lettering replaced by this context."""
        return without_prefix(self.original_headers, ERRORS) + dead_letter_headers(self.context)
