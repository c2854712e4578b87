"""The engine: inbound Kafka records in, published outcomes out. No faust here.

:mod:`agents.worker` feeds batches of :class:`Inbound` records from faust; this module decodes
them, groups them by ticket (events of one ticket run one after another, in arrival order;
tickets run concurrently, bounded), runs every matching flow plan, and hands the step outputs,
run results, retries and dead letters to a :class:`Publisher`, which returns only once they are
durable. :meth:`Engine.handle_batch` never raises: whatever goes wrong with one record becomes a
dead letter for that record, so the batch can be acknowledged and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pipeline.events import Event
from pipeline.outcome import ErrorInfo
from pipeline.plan import FlowSet, Plan
from pipeline.result import RunResult, RunStatus, StepStatus
from pipeline.runner import Ports, run
from topics import headers as h
from topics.catalogue import Catalogue, TopicRole
from topics.codecs import decode_event
from topics.errors import DecodeError
from topics.records import (
    DeadLetterRecord,
    RunResultRecord,
    StepOutputRecord,
    StepSummary,
)
from topics.redaction import DEFAULT_REDACT_KEYS, scrub
from topics.tracing import TRACEPARENT, TRACESTATE

log = logging.getLogger(__name__)


class EngineStopped(Exception):
    """The worker is shutting down while a batch waits (a budget pause, an unreachable broker).
    The batch is abandoned unacknowledged, so its events are delivered again after a restart."""


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
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Publisher(Protocol):
    async def publish(self, records: Sequence[Outbound]) -> None:
        """Send the records; return only once every one is acknowledged by all in-sync replicas."""
        ...


@dataclass
class EngineStats:
    """Counters for the demo summary and logs (metrics come with the operations work)."""

    events_in: int = 0
    runs: int = 0
    runs_succeeded: int = 0
    steps_run: int = 0
    records_written: int = 0
    retries_scheduled: int = 0
    dead_letters: int = 0
    decode_errors: int = 0
    pauses: int = 0


@dataclass(frozen=True, slots=True)
class _Decoded:
    record: Inbound
    event: Event | None
    error: DecodeError | None

    @property
    def ticket(self) -> str:
        if self.event is not None:
            return self.event.ticket_id
        return f"undecodable:{self.record.topic}:{self.record.partition}:{self.record.offset}"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    max_concurrent_tickets: int = (
        64  # tickets in flight per batch; events of one ticket run in order
    )
    max_event_bytes: int = 1_048_576
    min_pause_s: float = 5.0  # the shortest pause (budget spent, connection refused)
    redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS


class Engine:
    """Runs flows for batches of inbound records and publishes every outcome."""

    def __init__(
        self,
        *,
        flows: FlowSet,
        catalogue: Catalogue,
        ports: Ports,
        publisher: Publisher,
        settings: EngineSettings | None = None,
        stopping: asyncio.Event | None = None,
    ) -> None:
        """``stopping``: set when the worker shuts down; shared with the publisher so that
        neither a pause nor a publish retry outlives the worker."""
        self.flows = flows
        self.catalogue = catalogue
        self.ports = ports
        self.publisher = publisher
        self.settings = settings or EngineSettings()
        self.stats = EngineStats()
        self.stopping = stopping or asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        # The catalogue lists the inputs as (tickets, interactions): flows name them that way.
        self._logical = dict(zip((s.name for s in catalogue.inputs), LOGICAL_INPUTS, strict=True))
        self._tiers = {spec.name: index for index, spec in enumerate(catalogue.retry_tiers)}
        self._step_outputs = catalogue.one(TopicRole.STEP_OUTPUTS).name
        self._run_results = catalogue.one(TopicRole.RUN_RESULTS).name
        self._dead_letters = catalogue.one(TopicRole.DEAD_LETTERS).name

    async def handle_batch(self, batch: Sequence[Inbound]) -> None:
        """Process a batch; return once every outcome is durable. Never raises for a record;
        raises :class:`EngineStopped` when the worker stops before the batch is done."""
        if self.stopping.is_set():
            raise EngineStopped
        self.idle.clear()
        try:
            await self._handle_batch(batch)
        finally:
            self.idle.set()

    async def _handle_batch(self, batch: Sequence[Inbound]) -> None:
        await self.ports.ledger.sync()
        tickets: dict[str, list[_Decoded]] = {}
        for record in batch:
            item = self._decode(record)
            tickets.setdefault(item.ticket, []).append(item)
        limit = asyncio.Semaphore(self.settings.max_concurrent_tickets)

        async def one_ticket(items: list[_Decoded]) -> None:
            async with limit:
                for item in items:  # arrival order within a ticket
                    await self._handle(item)

        await asyncio.gather(*(one_ticket(items) for items in tickets.values()))

    def _decode(self, record: Inbound) -> _Decoded:
        self.stats.events_in += 1
        try:
            event = decode_event(
                record.value, topic=record.topic, max_bytes=self.settings.max_event_bytes
            )
        except DecodeError as error:
            return _Decoded(record, None, error)
        return _Decoded(record, event, None)

    async def _handle(self, item: _Decoded) -> None:
        try:
            outbound = await self._process(item)
        except EngineStopped:
            raise
        except Exception as error:  # a defect, not a Salesforce failure: park the record
            log.exception(
                "engine error on %s[%d]@%d",
                item.record.topic,
                item.record.partition,
                item.record.offset,
            )
            context = _context(
                item.record,
                h.Stage.ROUTE,
                "engine_error",
                str(error),
                event=item.event,
                exception_class=h.qualified_name(error),
            )
            outbound = [self._dead_letter(item.record, context)]
        await self.publisher.publish(outbound)

    async def _process(self, item: _Decoded) -> list[Outbound]:
        record = item.record
        if item.error is not None:
            self.stats.decode_errors += 1
            return [self._dead_letter_decode(record, item.error)]
        assert item.event is not None
        event = item.event
        retry = h.parse_retry_headers(record.headers)
        if retry is not None:
            await self._wait_until(retry.not_before_ms)
            plan = self.flows.get(retry.flow) if retry.flow else None
            plans: tuple[Plan, ...] = (plan,) if plan is not None else ()
            if retry.flow and plan is None:
                return [
                    self._dead_letter(
                        record,
                        _context(
                            record,
                            h.Stage.ROUTE,
                            "flow_removed",
                            f"flow {retry.flow!r} is no longer loaded; cannot retry",
                            event=event,
                        ),
                    )
                ]
        else:
            plans = self.flows.match(event, self._logical.get(record.topic))
        outbound: list[Outbound] = []
        for plan in plans:
            # Attempts spent by earlier deliveries belong to the step that failed then.
            prior = {retry.resume_step: retry.attempt} if retry and retry.resume_step else 0
            started = self.ports.clock.monotonic()
            result = await run(plan, event, self.ports, prior_attempts=prior)
            while result.status is RunStatus.PAUSED:  # the org's API budget: wait, then go on
                await self._pause(plan, result)
                result = await run(plan, event, self.ports, prior_attempts=prior)
            elapsed_ms = (self.ports.clock.monotonic() - started) * 1000
            outbound.extend(self._outcomes(record, event, plan, result, elapsed_ms, retry))
        return outbound

    def _outcomes(
        self,
        record: Inbound,
        event: Event,
        plan: Plan,
        result: RunResult,
        elapsed_ms: float,
        retry: h.RetryContext | None,
    ) -> list[Outbound]:
        self.stats.runs += 1
        now = datetime.fromtimestamp(self.ports.clock.now(), UTC)
        key = event.ticket_id.encode()
        trace = _trace_headers(record.headers)
        out = []
        for step in result.steps:
            if step.status is StepStatus.SUCCEEDED:
                self.stats.steps_run += 1
                if step.salesforce_id and _writes(plan, step.step_id):
                    self.stats.records_written += 1
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
            out.append(
                Outbound(
                    self._step_outputs, key, step_record.to_bytes(self.settings.redact_keys), trace
                )
            )
        failed = result.step(result.failed_step) if result.failed_step else None
        attempts = (
            failed.attempt
            if failed is not None
            else max((s.attempt for s in result.steps), default=0)
        )
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
        out.append(Outbound(self._run_results, key, run_record.to_bytes(), trace))
        if result.status is RunStatus.SUCCEEDED:
            self.stats.runs_succeeded += 1
        elif result.status is RunStatus.RETRY_LATER:
            out.append(self._retry(record, plan, result, attempts, retry))
        elif result.status is RunStatus.DEAD_LETTER:
            out.append(self._dead_letter(record, _run_failure(record, event, plan, result)))
        return out

    def _retry(
        self,
        record: Inbound,
        plan: Plan,
        result: RunResult,
        attempts: int,
        retry: h.RetryContext | None,
    ) -> Outbound:
        """Park the record on the next retry tier, keeping where it first came from."""
        self.stats.retries_scheduled += 1
        tier_index = self._tiers.get(record.topic, -1) + 1  # an input record starts at tier 0
        tier = self.catalogue.retry_tier_for(tier_index + 1)
        delay_s = (tier.delay_ms or 0) / 1000
        context = h.RetryContext(
            attempt=attempts,
            not_before_ms=int((self.ports.clock.now() + delay_s) * 1000),
            origin_topic=retry.origin_topic if retry else record.topic,
            origin_partition=retry.origin_partition if retry else record.partition,
            origin_offset=retry.origin_offset if retry else record.offset,
            flow=plan.name,
            resume_step=result.failed_step,
        )
        headers = h.replace_headers(record.headers, h.retry_headers(context))
        return Outbound(tier.name, record.key, record.value, headers)

    def _dead_letter(self, record: Inbound, context: h.DeadLetterContext) -> Outbound:
        self.stats.dead_letters += 1
        letter = DeadLetterRecord(record.key, record.value, context, record.headers)
        return Outbound(self._dead_letters, record.key, letter.to_bytes(), letter.headers)

    def _dead_letter_decode(self, record: Inbound, error: DecodeError) -> Outbound:
        self.stats.dead_letters += 1
        letter = DeadLetterRecord.for_decode_error(
            error,
            key=record.key,
            value=record.value,
            headers=record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
        )
        return Outbound(self._dead_letters, record.key, letter.to_bytes(), letter.headers)

    async def _pause(self, plan: Plan, result: RunResult) -> None:
        """Hold this run (and so the batch) until the budget allows calls again. Not an
        attempt, not a failure: the event is neither retried later nor dead-lettered."""
        self.stats.pauses += 1
        delay = max(result.retry_after or 0.0, self.settings.min_pause_s)
        log.warning("flow %s paused for %.1fs: %s", plan.name, delay, result.reason)
        sleeping = asyncio.ensure_future(self.ports.clock.sleep(delay))
        stopping = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        for waiter in (sleeping, stopping):
            waiter.cancel()
        if self.stopping.is_set():
            raise EngineStopped

    async def _wait_until(self, not_before_ms: int) -> None:
        delay = not_before_ms / 1000 - self.ports.clock.now()
        if delay > 0:
            await self.ports.clock.sleep(delay)


LOGICAL_INPUTS = ("tickets", "interactions")


def _writes(plan: Plan, step_id: str) -> bool:
    step = plan.step(step_id)
    return step is not None and step.writes


def _error_dict(error: ErrorInfo | None) -> dict[str, object] | None:
    if error is None:
        return None
    return {
        "class": error.error_class,
        "message": scrub(error.message),
        "errorCode": error.error_code,
        "fields": list(error.fields),
        "retriable": error.retriable,
    }


def _trace_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers if k in (TRACEPARENT, TRACESTATE)]


def _origin(record: Inbound) -> tuple[str, int, int]:
    retry = h.parse_retry_headers(record.headers)
    if retry is not None:
        return retry.origin_topic, retry.origin_partition, retry.origin_offset
    return record.topic, record.partition, record.offset


def _context(
    record: Inbound,
    stage: h.Stage,
    reason: str,
    message: str,
    *,
    event: Event | None = None,
    exception_class: str = "actionflows.EngineError",
    **details: object,
) -> h.DeadLetterContext:
    topic, partition, offset = _origin(record)
    return h.DeadLetterContext(
        topic=topic,
        partition=partition,
        offset=offset,
        stage=stage,
        reason=reason,
        exception_class=exception_class,
        exception_message=h.safe_message(message),
        timestamp_ms=record.timestamp_ms,
        event_id=event.id if event else None,
        **details,  # type: ignore[arg-type]
    )


def _run_failure(
    record: Inbound, event: Event, plan: Plan, result: RunResult
) -> h.DeadLetterContext:
    error = result.error
    failed = result.step(result.failed_step) if result.failed_step else None
    return _context(
        record,
        h.Stage.STEP,
        result.reason or "dead_letter",
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
