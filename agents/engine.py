"""The engine: one inbound Kafka record in, its published outcomes out. No faust here.

:mod:`agents.worker` takes records from faust and :mod:`agents.scheduler` runs them, by ticket;
for each record this module does the work: :meth:`Engine.prepare` decodes it (and names its
ticket), :meth:`Engine.handle` runs every matching flow plan and hands the step outputs, run
results, retries and dead letters (built by :mod:`agents.outcomes`) to a :class:`Publisher`,
which returns only once they are durable. An event that matches no flow publishes a
``no_match`` run result (unless turned off), so every record leaves a trace.

:meth:`Engine.handle` never raises for a record: whatever goes wrong with one becomes a dead
letter for it, so its offset can move on. Faults of the infrastructure are not the record's
fault and are waited out instead: a ledger that cannot sync is retried with backoff, and a
Salesforce org that refuses work (the API budget is spent, a login is refused) **pauses** the
worker: no new run starts until the pause ends, nothing spins, nothing is dead-lettered. Only
a stop cuts a wait short; the record is then left unacknowledged and delivered again.

The ledger is synced (every entry written anywhere before now is readable) whenever the worker
is assigned partitions, before their records run — their earlier steps may have been recorded
by the worker that owned them before — and before each record from a retry tier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agents import outcomes
from agents.delivery import backoff
from agents.observer import EngineObserver, NullObserver
from agents.outcomes import Inbound, Outbound, Outcomes
from pipeline.events import Event
from pipeline.plan import FlowSet, Plan
from pipeline.result import RunResult, RunStatus, StepStatus
from pipeline.runner import Ports, run
from topics import headers as h
from topics.catalogue import Catalogue
from topics.codecs import DEFAULT_MAX_BYTES, decode_event
from topics.errors import DecodeError
from topics.redaction import DEFAULT_REDACT_KEYS

log = logging.getLogger(__name__)

#: Room kept for a dead letter's key and headers when the decoder's limit is aligned with the
#: topics' (see :meth:`Engine.align_event_limit`).
ENVELOPE_RESERVE = 16_384


class EngineStopped(Exception):
    """The worker is shutting down while a record waits (a pause, an unreachable broker). The
    record is abandoned unacknowledged, so it is delivered again after a restart."""


class Publisher(Protocol):
    async def publish(self, records: Sequence[Outbound]) -> None:
        """Send the records; return only once every one is acknowledged by all in-sync replicas.
        Raises :class:`EngineStopped` only, when the worker stops before they are."""
        ...


@dataclass
class EngineStats:
    """Counters for the demo summary and logs (metrics come through the observer)."""

    events_in: int = 0
    runs: int = 0
    runs_succeeded: int = 0
    steps_run: int = 0
    records_written: int = 0
    retries_scheduled: int = 0
    dead_letters: int = 0
    decode_errors: int = 0
    no_match: int = 0
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
class Prepared:
    """A record taken in: decoded, or with the reason it could not be."""

    record: Inbound
    event: Event | None
    error: DecodeError | None

    @property
    def ticket(self) -> str:
        """The lane it runs in: its ticket, or a lane of its own when it did not decode."""
        if self.event is not None:
            return self.event.ticket_id
        record = self.record
        return f"undecodable:{record.topic}:{record.partition}:{record.offset}"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    # Records in flight per worker (W): taken and not yet finished, across every agent. Events
    # of one ticket run one after another; the rest run concurrently, up to W.
    max_in_flight: int = 2000
    # The least time between two Salesforce calls of one kind while none is in flight; what
    # comes meanwhile shares the next call (salesforce.batching's gather_s). 0: no interval.
    salesforce_gather_s: float = 0.020
    max_event_bytes: int = DEFAULT_MAX_BYTES  # lowered at start to fit the topics' limits
    min_pause_s: float = 5.0  # the shortest pause (budget spent, connection refused)
    no_match_results: bool = True  # publish a no_match run result for an unmatched event
    redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS


class Engine:
    """Runs flows for inbound records and publishes every outcome."""

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
        self.max_event_bytes = self.settings.max_event_bytes
        self.stats = EngineStats()
        self.observer: EngineObserver = observer or NullObserver()
        self.stopping = stopping or asyncio.Event()
        # The catalogue lists the inputs as (tickets, interactions): flows name them that way.
        self._logical = dict(zip((s.name for s in catalogue.inputs), LOGICAL_INPUTS, strict=True))
        self.outcomes = Outcomes(catalogue, redact_keys=self.settings.redact_keys)
        self._synced = asyncio.Event()  # the ledger has caught up since the last assignment
        self._synced.set()
        self._sync_task: asyncio.Task[None] | None = None
        self._running = asyncio.Event()  # cleared while Salesforce work is paused
        self._running.set()
        self._pause_until = 0.0
        self._resume_task: asyncio.Task[None] | None = None

    def align_event_limit(self, record_limit: int) -> None:
        """Accept no event whose dead letter or retry could not carry it unchanged: the
        decoder's limit becomes at most ``record_limit`` (the smallest limit of those topics)
        less :data:`ENVELOPE_RESERVE` for the key and headers."""
        self.max_event_bytes = min(
            self.settings.max_event_bytes, max(record_limit - ENVELOPE_RESERVE, 0)
        )

    def prepare(self, record: Inbound) -> Prepared:
        """Decode a record as it is taken. Never raises: a record that does not decode is
        prepared with its error and becomes a dead letter when it runs."""
        self.stats.events_in += 1
        self.observer.record_in(record)
        try:
            event = decode_event(record.value, topic=record.topic, max_bytes=self.max_event_bytes)
        except DecodeError as error:
            return Prepared(record, None, error)
        except Exception as error:  # a defect in a decoder: the record is dead-lettered
            log.exception(
                "decoder error on %s[%d]@%d", record.topic, record.partition, record.offset
            )
            failure = DecodeError(f"the decoder failed: {h.qualified_name(error)}", "engine_error")
            failure.topic = record.topic
            return Prepared(record, None, failure)
        self.observer.decoded(record, event)
        return Prepared(record, event, None)

    async def handle(self, item: Prepared) -> bool:
        """Run one record and publish its outcomes. Returns True once they are durable; False
        when the worker stopped first, or when not even a dead letter could be published for it
        (logged): the record must then stay unacknowledged. Never raises, but for cancellation."""
        try:
            if not self._synced.is_set():
                await self._wait_or_stop(self._synced)
            try:
                outbound = await self._process(item)
            except EngineStopped:
                raise
            except Exception as error:  # a defect, not a Salesforce failure: park the record
                outbound = [self._engine_error(item, error, h.Stage.ROUTE)]
            await self._publish(item, outbound)
        except EngineStopped:
            return False
        return True

    def resync(self) -> None:
        """Partitions were assigned: hold every record until the ledger has caught up."""
        self._synced.clear()
        if self._sync_task is not None:
            self._sync_task.cancel()
        self._sync_task = asyncio.create_task(self._resync(), name="ledger-resync")

    async def close(self) -> None:
        """Cancel the background waits (a ledger resync, the end of a pause)."""
        for task in (self._sync_task, self._resume_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _resync(self) -> None:
        try:
            await self._sync_ledger()
        except EngineStopped:
            return
        self._synced.set()

    async def _sync_ledger(self) -> None:
        """Sync the ledger, retrying with backoff while it fails (an infrastructure fault)."""
        attempt = 0
        while True:
            try:
                await self.ports.ledger.sync()
                return
            except Exception as error:  # the ledger or the broker: wait it out, never a crash
                attempt += 1
                delay = backoff(attempt)
                log.warning("ledger sync failed (%r); retrying in %.1fs", error, delay)
                await self._sleep_or_stop(delay)

    async def _publish(self, item: Prepared, outbound: list[Outbound]) -> None:
        try:
            await self.publisher.publish(outbound)
        except EngineStopped:
            raise
        except Exception as error:  # a defect in publishing: say so with a dead letter
            letter = self._engine_error(item, error, h.Stage.PUBLISH)
            try:
                await self.publisher.publish([letter])
            except EngineStopped:
                raise
            except Exception:
                log.exception(
                    "cannot publish any outcome for %s[%d]@%d; it stays unacknowledged",
                    item.record.topic,
                    item.record.partition,
                    item.record.offset,
                )
                raise EngineStopped from None

    def _engine_error(self, item: Prepared, error: Exception, stage: h.Stage) -> Outbound:
        record = item.record
        log.exception(
            "engine error on %s[%d]@%d", record.topic, record.partition, record.offset,
            exc_info=error,
        )  # fmt: skip
        context = outcomes.context(
            record,
            stage,
            "engine_error",
            str(error),
            event=item.event,
            exception_class=h.qualified_name(error),
        )
        return self._dead_letter(record, context)

    async def _process(self, item: Prepared) -> list[Outbound]:
        record = item.record
        if item.error is not None:
            self.stats.decode_errors += 1
            self.stats.dead_letters += 1
            self.observer.dead_letter(record, f"{h.Stage.DECODE.value}.{item.error.code}")
            return [self.outcomes.decode_failure(record, item.error)]
        assert item.event is not None
        event = item.event
        retry = h.parse_retry_headers(record.headers)
        if retry is not None:
            # Its earlier attempt may have been recorded by another worker moments ago.
            await self._sync_ledger()
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
            self.stats.no_match += 1
            self.observer.no_match(record, event)
            if not self.settings.no_match_results:
                return []
            return [self.outcomes.no_match(record, event, now_s=self.ports.clock.now())]
        outbound: list[Outbound] = []
        for plan in plans:
            # Attempts spent by earlier deliveries belong to the step that failed then.
            prior = {retry.resume_step: retry.attempt} if retry and retry.resume_step else 0
            started = self.ports.clock.monotonic()
            with self.observer.run(record, event, plan):
                result = await self._run(plan, event, prior)
            elapsed_s = self.ports.clock.monotonic() - started
            self.stats.count(plan, result)
            self.observer.run_finished(plan, result, elapsed_s)
            if result.status is RunStatus.DEAD_LETTER:
                self.observer.dead_letter(record, result.reason_code or "step.dead_letter")
            outbound.extend(
                self.outcomes.for_run(
                    record,
                    event,
                    plan,
                    result,
                    elapsed_ms=elapsed_s * 1000,
                    retry=retry,
                    now_s=self.ports.clock.now(),
                )
            )
        return outbound

    async def _run(self, plan: Plan, event: Event, prior: int | dict[str, int]) -> RunResult:
        """One run; while Salesforce refuses work (a pause), wait for the pause to end and run
        again. Not an attempt, not a failure: the event is neither retried later nor parked."""
        reread = True  # a new delivery reads the org again (pipeline.runner.run)
        while True:
            if not self._running.is_set():
                await self._wait_or_stop(self._running)
            result = await run(plan, event, self.ports, prior_attempts=prior, reread=reread)
            if result.status is not RunStatus.PAUSED:
                return result
            self._pause(plan, result)
            # The same delivery goes on where it stopped: its finds stand. Finding again after
            # every pause would spend the scarce budget on calls already made, and runs paused
            # together would burn the reserve on finds alone.
            reread = False

    def _pause(self, plan: Plan, result: RunResult) -> None:
        """Hold every new run of this worker until the pause is over (extended, not stacked,
        when several runs hit it)."""
        delay = max(result.retry_after or 0.0, self.settings.min_pause_s)
        self._pause_until = max(self._pause_until, self.ports.clock.monotonic() + delay)
        if self._resume_task is not None:
            return
        self.stats.pauses += 1
        log.warning("flow %s paused for %.1fs: %s", plan.name, delay, result.reason)
        self.observer.paused(result.reason_code or "pause.throttled")
        self._running.clear()
        self._resume_task = asyncio.create_task(self._resume_later(), name="engine-resume")

    async def _resume_later(self) -> None:
        clock = self.ports.clock
        try:
            while (left := self._pause_until - clock.monotonic()) > 0:
                await self._sleep_or_stop(left)
        except EngineStopped:
            return  # stopping: paused runs give up unacknowledged
        finally:
            self._resume_task = None
        self._running.set()
        self.observer.resumed()

    async def _sleep_or_stop(self, seconds: float) -> None:
        """Sleep on the injected clock; raise :class:`EngineStopped` if the worker stops."""
        await self._first(self.ports.clock.sleep(seconds))

    async def _wait_or_stop(self, event: asyncio.Event) -> None:
        await self._first(event.wait())

    async def _first(self, waiting: Awaitable[object]) -> None:
        if self.stopping.is_set():
            raise EngineStopped
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
            stop.cancel()
        if self.stopping.is_set():
            raise EngineStopped

    def _dead_letter(self, record: Inbound, context: h.DeadLetterContext) -> Outbound:
        self.stats.dead_letters += 1
        self.observer.dead_letter(record, context.reason)
        return self.outcomes.dead_letter(record, context)


LOGICAL_INPUTS = ("tickets", "interactions")


def _writes(plan: Plan, step_id: str) -> bool:
    step = plan.step(step_id)
    return step is not None and step.writes
