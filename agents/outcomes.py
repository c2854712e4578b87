"""What the engine publishes for a record: step outputs, run results, retries, dead letters.

Pure: a consumed :class:`Inbound` record and what became of it go in, :class:`Outbound` records
come out, ready for the publisher. No Kafka, no clock of its own (the caller passes ``now``), no
counters. :mod:`agents.engine` decides *when* a record is done; this module decides *what* is
published for it, so the record shapes, the dead-letter context and the redaction live in one
place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.events import Event
from pipeline.ledger import run_key
from pipeline.outcome import ErrorInfo
from pipeline.plan import Plan
from pipeline.result import RunResult, RunStatus
from topics import headers as h
from topics.catalogue import Catalogue, TopicRole
from topics.errors import DecodeError
from topics.records import DeadLetterRecord, RunResultRecord, StepOutputRecord, StepSummary
from topics.redaction import DEFAULT_REDACT_KEYS, Redactor
from topics.tracing import TRACEPARENT, TRACESTATE


@dataclass(frozen=True, slots=True)
class Inbound:
    """One consumed record, as the engine sees it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Outbound:
    """One record to publish."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


#: The trace headers for the records published for an inbound record (and the flow whose run
#: they report, or None). The default carries the input's; :mod:`agents.observe.tracing` names
#: the run's span instead.
TraceHeaders = Callable[[Inbound, str | None], list[tuple[str, bytes]]]


def incoming_trace(record: Inbound, flow: str | None) -> list[tuple[str, bytes]]:
    return _trace_headers(record.headers)


class Outcomes:
    """Builds the records of one deployment's catalogue."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS,
        trace: TraceHeaders = incoming_trace,
    ) -> None:
        self.catalogue = catalogue
        self._redactor = Redactor(redact_keys)  # keys lowered and compiled once, not per run
        self.trace = trace
        self._tiers = {spec.name: index for index, spec in enumerate(catalogue.retry_tiers)}
        self._step_outputs = catalogue.one(TopicRole.STEP_OUTPUTS).name
        self._run_results = catalogue.one(TopicRole.RUN_RESULTS).name
        self._dead_letters = catalogue.one(TopicRole.DEAD_LETTERS).name

    def for_run(
        self,
        record: Inbound,
        event: Event,
        plan: Plan,
        result: RunResult,
        *,
        elapsed_ms: float,
        retry: h.RetryContext | None,
        now_s: float,
    ) -> list[Outbound]:
        """A step output per step, the run result, and a retry or a dead letter if it failed."""
        now = datetime.fromtimestamp(now_s, UTC)
        redactor = self._redactor.learning(event.as_context())
        key = event.ticket_id.encode()
        trace = self.trace(record, plan.name)
        out = []
        for step in result.steps:
            step_record = StepOutputRecord(
                flow=plan.name,
                flow_version=plan.version,
                run_id=result.run_key,
                event_id=event.id,
                ticket_id=event.ticket_id,
                step=step.step_id,
                action=step.action,
                object=step.object,
                inputs=step.inputs,
                outputs=step.outputs,
                status=step.status,
                attempt=step.attempt,
                duration_ms=round(step.duration_ms, 3),
                at=now,
                salesforce_id=step.salesforce_id,
                error=_error_dict(step.error),
                idempotency_key=step.idempotency_key,
            )
            value = step_record.to_bytes(redactor)
            out.append(Outbound(self._step_outputs, key, value, list(trace)))
        attempts = run_attempts(result)
        run_record = RunResultRecord(
            flow=plan.name,
            version=plan.version,
            run_id=result.run_key,
            event_id=event.id,
            ticket_id=event.ticket_id,
            status=result.status,
            steps=[StepSummary(s.step_id, s.status, s.salesforce_id) for s in result.steps],
            duration_ms=round(elapsed_ms, 3),
            attempts=attempts,
            at=now,
            failed_step=result.failed_step,
            published=result.published,
        )
        out.append(Outbound(self._run_results, key, run_record.to_bytes(redactor), list(trace)))
        if result.status is RunStatus.RETRY_LATER:
            out.append(self.retry(record, plan, result, retry, now_s=now_s))
        elif result.status is RunStatus.DEAD_LETTER:
            out.append(self.dead_letter(record, run_failure(record, event, plan, result)))
        return out

    def no_match(self, record: Inbound, event: Event, *, now_s: float) -> Outbound:
        """The run result of an event no flow matched: ``status: no_match``, no flow (``""``,
        version 0), no steps, and a ``run_id`` that is stable for the event."""
        result = RunResultRecord(
            flow="",
            version=0,
            run_id=run_key(event.id, "", 0),
            event_id=event.id,
            ticket_id=event.ticket_id,
            status=RunStatus.NO_MATCH,
            steps=[],
            duration_ms=0.0,
            attempts=0,
            at=datetime.fromtimestamp(now_s, UTC),
        )
        trace = self.trace(record, None)
        return Outbound(self._run_results, event.ticket_id.encode(), result.to_bytes(), trace)

    def retry(
        self,
        record: Inbound,
        plan: Plan,
        result: RunResult,
        retry: h.RetryContext | None,
        *,
        now_s: float,
    ) -> Outbound:
        """Park the record on the next retry tier, keeping where it first came from."""
        tier_index = self._tiers.get(record.topic, -1) + 1  # an input record starts at tier 0
        tier = self.catalogue.retry_tier_for(tier_index + 1)
        delay_s = (tier.delay_ms or 0) / 1000
        context = h.RetryContext(
            attempt=run_attempts(result),
            not_before_ms=int((now_s + delay_s) * 1000),
            origin_topic=retry.origin_topic if retry else record.topic,
            origin_partition=retry.origin_partition if retry else record.partition,
            origin_offset=retry.origin_offset if retry else record.offset,
            flow=plan.name,
            resume_step=result.failed_step,
        )
        headers = h.replace_headers(
            _carry(record.headers, self.trace(record, plan.name)), h.retry_headers(context)
        )
        return Outbound(tier.name, record.key, record.value, headers)

    def dead_letter(self, record: Inbound, context: h.DeadLetterContext) -> Outbound:
        """The original record, unchanged, with its context in ``actionflows.errors.*``."""
        headers = _carry(record.headers, self.trace(record, context.flow))
        letter = DeadLetterRecord(record.key, record.value, context, headers)
        return Outbound(self._dead_letters, record.key, letter.to_bytes(), letter.headers)

    def decode_failure(self, record: Inbound, error: DecodeError) -> Outbound:
        """A record that did not decode, dead-lettered byte for byte with the reason."""
        letter = DeadLetterRecord.for_decode_error(
            error,
            key=record.key,
            value=record.value,
            headers=_carry(record.headers, self.trace(record, None)),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
        )
        return Outbound(self._dead_letters, record.key, letter.to_bytes(), letter.headers)


def run_attempts(result: RunResult) -> int:
    """The failed step's attempts, or the most any step took."""
    failed = result.step(result.failed_step) if result.failed_step else None
    if failed is not None:
        return failed.attempt
    return max((s.attempt for s in result.steps), default=0)


def context(
    record: Inbound,
    stage: h.Stage,
    reason: str,
    message: str,
    *,
    event: Event | None = None,
    exception_class: str = "actionflows.EngineError",
    **details: object,
) -> h.DeadLetterContext:
    """The dead-letter context of ``record``, pointing at where it first came in.

    ``reason`` is a stable code; a bare one (``engine_error``) is qualified by the stage
    (``route.engine_error``), one with an origin (``salesforce.DUPLICATES_DETECTED``) is kept.
    ``message`` is redacted with the default rules and, when ``event`` is given, with the
    event's own sensitive values (the email a validation message quotes).
    """
    redactor = Redactor() if event is None else Redactor().learning(event.as_context())
    retry = h.parse_retry_headers(record.headers)
    if retry is not None:
        topic, partition, offset = retry.origin_topic, retry.origin_partition, retry.origin_offset
    else:
        topic, partition, offset = record.topic, record.partition, record.offset
    return h.DeadLetterContext(
        topic=topic,
        partition=partition,
        offset=offset,
        stage=stage,
        reason=reason if "." in reason else f"{stage.value}.{reason}",
        exception_class=exception_class,
        exception_message=h.safe_message(message, redactor=redactor),
        timestamp_ms=record.timestamp_ms,
        event_id=event.id if event else None,
        **details,  # type: ignore[arg-type]
    )


def run_failure(
    record: Inbound, event: Event, plan: Plan, result: RunResult
) -> h.DeadLetterContext:
    """The context of a run that ended in a dead letter: flow, step, attempts, Salesforce error,
    and the run's stable reason code (``salesforce.INVALID_EMAIL_ADDRESS``,
    ``step.retries_exhausted`` …)."""
    error = result.error
    failed = result.step(result.failed_step) if result.failed_step else None
    return context(
        record,
        h.Stage.STEP,
        result.reason_code or "run_failed",
        error.message if error else (result.reason or "run failed"),
        event=event,
        exception_class=error.error_class if error else "actionflows.RunFailed",
        flow=plan.name,
        flow_version=plan.version,
        step=result.failed_step,
        attempts=failed.attempt if failed else None,
        salesforce_error_code=error.error_code if error else None,
        salesforce_fields=error.fields if error else (),
    )


def _error_dict(error: ErrorInfo | None) -> dict[str, object] | None:
    """A step's error as published; :meth:`StepOutputRecord.to_bytes` redacts it (the message
    with the event's sensitive values too)."""
    if error is None:
        return None
    return {
        "class": error.error_class,
        "message": error.message,
        "errorCode": error.error_code,
        "fields": list(error.fields),
        "retriable": error.retriable,
    }


def _trace_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers if k in (TRACEPARENT, TRACESTATE)]


def _carry(
    headers: Sequence[tuple[str, bytes]], trace: list[tuple[str, bytes]]
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with their trace headers replaced by ``trace`` (unchanged when equal)."""
    if _trace_headers(headers) == trace:
        return tuple(headers)
    return tuple((k, v) for k, v in headers if k not in (TRACEPARENT, TRACESTATE)) + tuple(trace)
