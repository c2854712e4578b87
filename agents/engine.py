"""The engine: inbound Kafka records in, published outcomes out. No faust here.

:mod:`agents.worker` feeds batches of :class:`Inbound` records from faust; this module decodes
them, groups them by ticket (events of one ticket run one after another, in arrival order;
tickets run concurrently, bounded), runs every matching flow plan, and hands the step outputs,
run results, retries and dead letters (built by :mod:`agents.outcomes`) to a
:class:`Publisher`, which returns only once they are durable. :meth:`Engine.handle_batch` never
raises: whatever goes wrong with one record becomes a dead letter for that record, so the batch
can be acknowledged and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agents import outcomes
from agents.observer import EngineObserver, NullObserver
from agents.outcomes import Inbound, Outbound, Outcomes
from pipeline.events import Event
from pipeline.plan import FlowSet, Plan
from pipeline.result import RunResult, RunStatus, StepStatus
from pipeline.runner import Ports, run
from topics import headers as h
from topics.catalogue import Catalogue
from topics.codecs import decode_event
from topics.errors import DecodeError
from topics.redaction import DEFAULT_REDACT_KEYS

log = logging.getLogger(__name__)


class EngineStopped(Exception):
    """The worker is shutting down while a batch waits (a budget pause, an unreachable broker).
    The batch is abandoned unacknowledged, so its events are delivered again after a restart."""


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

    def count(self, plan: Plan, result: RunResult) -> None:
        """Count one finished run: its steps, the records it wrote, how it ended."""
        self.runs += 1
        for step in result.steps:
            if step.status is StepStatus.SUCCEEDED:
                self.steps_run += 1
                self.records_written += bool(step.salesforce_id and _writes(plan, step.step_id))
        self.runs_succeeded += result.status is RunStatus.SUCCEEDED
        self.retries_scheduled += result.status is RunStatus.RETRY_LATER
        self.dead_letters += result.status is RunStatus.DEAD_LETTER


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
        observer: EngineObserver | None = None,
    ) -> None:
        """``stopping``: set when the worker shuts down; shared with the publisher so that
        neither a pause nor a publish retry outlives the worker. ``observer``: told what happens
        to each record (metrics, traces); see :mod:`agents.observer`."""
        self.flows = flows
        self.catalogue = catalogue
        self.ports = ports
        self.publisher = publisher
        self.settings = settings or EngineSettings()
        self.stats = EngineStats()
        self.observer: EngineObserver = observer or NullObserver()
        self.stopping = stopping or asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        # The catalogue lists the inputs as (tickets, interactions): flows name them that way.
        self._logical = dict(zip((s.name for s in catalogue.inputs), LOGICAL_INPUTS, strict=True))
        self.outcomes = Outcomes(catalogue, redact_keys=self.settings.redact_keys)

    async def handle_batch(self, batch: Sequence[Inbound]) -> None:
        """Process a batch; return once every outcome is durable. Never raises for a record;
        raises :class:`EngineStopped` when the worker stops before the batch is done."""
        if self.stopping.is_set():
            raise EngineStopped
        self.idle.clear()
        self.observer.in_flight(len(batch))
        try:
            await self._handle_batch(batch)
        finally:
            self.idle.set()
            self.observer.in_flight(0)

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
        self.observer.record_in(record)
        try:
            event = decode_event(
                record.value, topic=record.topic, max_bytes=self.settings.max_event_bytes
            )
        except DecodeError as error:
            return _Decoded(record, None, error)
        self.observer.decoded(record, event)
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
            context = outcomes.context(
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
            self.stats.dead_letters += 1
            self.observer.dead_letter(record, item.error.code)
            return [self.outcomes.decode_failure(record, item.error)]
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
                        outcomes.context(
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
            if not plans:
                self.observer.no_match(record, event)
        outbound: list[Outbound] = []
        for plan in plans:
            # Attempts spent by earlier deliveries belong to the step that failed then.
            prior = {retry.resume_step: retry.attempt} if retry and retry.resume_step else 0
            started = self.ports.clock.monotonic()
            with self.observer.run(record, event, plan):
                result = await run(plan, event, self.ports, prior_attempts=prior)
                while result.status is RunStatus.PAUSED:  # the org's API budget: wait, go on
                    await self._pause(plan, result)
                    result = await run(plan, event, self.ports, prior_attempts=prior)
            elapsed_s = self.ports.clock.monotonic() - started
            elapsed_ms = elapsed_s * 1000
            self.stats.count(plan, result)
            self.observer.run_finished(plan, result, elapsed_s)
            if result.status is RunStatus.DEAD_LETTER:
                self.observer.dead_letter(record, result.reason or "dead_letter")
            outbound.extend(
                self.outcomes.for_run(
                    record,
                    event,
                    plan,
                    result,
                    elapsed_ms=elapsed_ms,
                    retry=retry,
                    now_s=self.ports.clock.now(),
                )
            )
        return outbound

    def _dead_letter(self, record: Inbound, context: h.DeadLetterContext) -> Outbound:
        self.stats.dead_letters += 1
        self.observer.dead_letter(record, context.reason)
        return self.outcomes.dead_letter(record, context)

    async def _pause(self, plan: Plan, result: RunResult) -> None:
        """Hold this run (and so the batch) until the budget allows calls again. Not an
        attempt, not a failure: the event is neither retried later nor dead-lettered."""
        self.stats.pauses += 1
        delay = max(result.retry_after or 0.0, self.settings.min_pause_s)
        log.warning("flow %s paused for %.1fs: %s", plan.name, delay, result.reason)
        self.observer.paused(result.reason or "paused")
        sleeping = asyncio.ensure_future(self.ports.clock.sleep(delay))
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopping):
                waiter.cancel()
            self.observer.resumed()
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
