"""Prometheus metrics of one worker, named and documented in docs/operations.md.

:class:`Metrics` owns a registry (not the process-wide default, so two services in one process,
as in tests, keep their figures apart) and is an :class:`~agents.observer.EngineObserver`: the
engine tells it what happens to each record. :meth:`Metrics.salesforce_call` is a listener for
:meth:`salesforce.client.SalesforceClient.on_call`. Figures that already live elsewhere are read
when Prometheus scrapes, not copied: consumer lag and assigned partitions from the faust
consumer, the API budget from the governor, the ledger's state from its status.

Label values that come from input (event types, dead-letter reasons) are bounded: past
``MAX_LABEL_VALUES`` distinct values a label reads ``other``, so a hostile producer cannot grow
the registry without end.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from agents.observer import NullObserver
from pipeline.result import StepStatus
from salesforce.calls import CallInfo

if TYPE_CHECKING:
    from agents.ledger import LedgerStatus
    from agents.outcomes import Inbound
    from pipeline.events import Event
    from pipeline.plan import Plan
    from pipeline.result import RunResult
    from salesforce.budget import BudgetGovernor

MAX_LABEL_VALUES = 200
# Salesforce calls take milliseconds to tens of seconds; steps add in-process retries.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LAG_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CAUSE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): ")


def label(text: str) -> str:
    """A reason or cause as a label value: a stable code as is (``malformed_json``,
    ``login_refused``); from a sentence, the error class it starts with (``ValidationError:
    permanent error`` → ``ValidationError``); anything else ``other``."""
    if _CODE.match(text):
        return text
    match = _CAUSE.match(text)
    return match.group(1) if match else "other"


class _Bounded:
    """The label values seen so far, at most ``limit`` of them."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


class Metrics(NullObserver):
    """Every metric of a worker, and the engine observer that feeds them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "actionflows_records_in", "Records taken from an input or retry topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.events_in = Counter(
            "actionflows_events_in", "Records that decoded into an event, by topic and event type",
            ["topic", "type"], registry=r,
        )  # fmt: skip
        self.runs = Counter(
            "actionflows_runs", "Finished flow runs by flow and status", ["flow", "status"],
            registry=r,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "actionflows_run_duration_seconds", "Flow run duration, pauses included", ["flow"],
            buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.steps = Counter(
            "actionflows_steps", "Steps by action, object and status",
            ["action", "object", "status"], registry=r,
        )  # fmt: skip
        self.step_seconds = Histogram(
            "actionflows_step_duration_seconds",
            "Duration of executed steps (in-process retries included) by action and object",
            ["action", "object"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.no_matches = Counter(
            "actionflows_no_match", "Events no flow matched", ["topic", "type"], registry=r
        )
        self.dead_letters = Counter(
            "actionflows_dead_letters", "Dead letters published, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.in_flight_events = Gauge(
            "actionflows_in_flight_events", "Records taken and not yet finished", registry=r
        )
        self.paused_causes = Gauge(
            "actionflows_paused", "1 while runs are held for this cause (budget, login_refused…)",
            ["cause"], registry=r,
        )  # fmt: skip
        self.pauses = Counter(
            "actionflows_pauses", "Runs held for a pause, by cause", ["cause"], registry=r
        )
        self.sf_calls = Counter(
            "actionflows_salesforce_calls",
            "HTTP exchanges with Salesforce by resource and status (none: no response)",
            ["resource", "method", "status"], registry=r,
        )  # fmt: skip
        self.sf_seconds = Histogram(
            "actionflows_salesforce_call_duration_seconds", "Salesforce HTTP exchange duration",
            ["resource"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.sf_retries = Counter(
            "actionflows_salesforce_retries",
            "Steps executed again in process after a retriable failure (each a new call)",
            ["action", "object"], registry=r,
        )  # fmt: skip
        self.ledger_sync = Histogram(
            "actionflows_ledger_sync_seconds",
            "Time waited for the ledger to catch up with its topic before a batch",
            buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "actionflows_event_loop_lag_seconds",
            "How late each 1 s heartbeat of the event loop ran: how long ready work waited",
            buckets=LAG_SECONDS, registry=r,
        )  # fmt: skip
        # Each label set's child, found once: labels() takes a lock and checks its values on
        # every call, several times per event. (The values are bounded: _Bounded below.)
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}
        self._types = _Bounded()
        self._reasons = _Bounded()
        self._resources = _Bounded()
        self._active: list[str] = []  # the causes of the pauses going on, oldest first
        self._cause: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "actionflows_pause_cause", default=None
        )

    def _at(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, remembered."""
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[metric, values] = metric.labels(*values)
        return child

    def collect_from(self, collector: Collector) -> None:
        self.registry.register(collector)

    # --- EngineObserver -----------------------------------------------------------------------

    def record_in(self, record: Inbound) -> None:
        self._at(self.records_in, record.topic).inc()

    def decoded(self, record: Inbound, event: Event) -> None:
        self._at(self.events_in, record.topic, self._types(event.type)).inc()

    def run_finished(self, plan: Plan, result: RunResult, elapsed_s: float) -> None:
        self._at(self.runs, plan.name, str(result.status)).inc()
        self._at(self.run_seconds, plan.name).observe(elapsed_s)
        for step in result.steps:
            self._at(self.steps, step.action, step.object, str(step.status)).inc()
            if step.status in (StepStatus.SUCCEEDED, StepStatus.FAILED):
                self._at(self.step_seconds, step.action, step.object).observe(
                    step.duration_ms / 1000
                )

    def no_match(self, record: Inbound, event: Event) -> None:
        self._at(self.no_matches, record.topic, self._types(event.type)).inc()

    def dead_letter(self, record: Inbound, reason: str) -> None:
        self._at(self.dead_letters, self._reasons(label(reason))).inc()

    def in_flight(self, count: int) -> None:
        self.in_flight_events.set(count)

    def paused(self, cause: str) -> None:
        name = pause_cause(cause)
        self._cause.set(name)
        self._active.append(name)
        self.pauses.labels(name).inc()
        self.paused_causes.labels(name).set(1)

    def resumed(self) -> None:
        # Which pause ends: the one this task (or the task that started the wait) began, as a
        # context variable says; else the latest. Pauses may overlap (one per held run) or be
        # one per worker, resumed from another task; both end right.
        name = self._cause.get()
        self._cause.set(None)
        if name is None or name not in self._active:
            if not self._active:
                return
            name = self._active[-1]
        self._active.remove(name)
        if name not in self._active:
            self.paused_causes.labels(name).set(0)

    # --- Salesforce -----------------------------------------------------------------------------

    def salesforce_call(self, call: CallInfo) -> None:
        resource = self._resources(call.resource)
        status = str(call.status) if call.status is not None else "none"
        self._at(self.sf_calls, resource, call.method, status).inc()
        self._at(self.sf_seconds, resource).observe(call.duration_s)

    def step_retried(self, action: str, object_name: str) -> None:
        """A step is executed again in process after a retriable failure: a new call."""
        self._at(self.sf_retries, action, object_name).inc()


def pause_cause(reason: str) -> str:
    """The pause's stable code without its ``pause.`` prefix: ``budget``, ``login_refused``,
    ``concurrency_limit``, ``daily_limit`` (:func:`pipeline.outcome.pause_code`)."""
    return label(reason).removeprefix("pause.")


class _Gauges(Collector):
    """Gauges computed at scrape time by ``read``."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return list(self._read())


def budget_collector(governor: BudgetGovernor) -> Collector:
    """The org's daily API budget as the latest ``Sforce-Limit-Info`` reported it."""

    def read() -> Iterator[Metric]:
        api = governor.usage.api if governor.usage else None
        if api is not None:
            for name, text, value in (
                ("used", "API calls the org used in the rolling 24 hours", api.used),
                ("limit", "The org's daily API call limit", api.limit),
                ("remaining", "API calls the org has left today", api.remaining),
            ):
                yield GaugeMetricFamily(f"actionflows_salesforce_api_{name}", text, value=value)
        yield GaugeMetricFamily(
            "actionflows_salesforce_budget_paused",
            "1 while the budget governor refuses calls",
            value=int(governor.paused),
        )
        yield GaugeMetricFamily(
            "actionflows_salesforce_calls_in_flight",
            "Calls sent whose usage figure has not come back",
            value=governor.in_flight,
        )

    return _Gauges(read)


def ledger_collector(status: Callable[[], LedgerStatus | None]) -> Collector:
    def read() -> Iterator[Metric]:
        current = status()
        if current is None:
            return
        yield GaugeMetricFamily(
            "actionflows_ledger_entries", "Step records held by the ledger", value=current.entries
        )
        yield GaugeMetricFamily(
            "actionflows_ledger_synced", "1 when the ledger's tail is alive and caught up",
            value=int(current.alive and current.synced),
        )  # fmt: skip

    return _Gauges(read)


def consumer_collector(offsets: Callable[[], ConsumerOffsets | None]) -> Collector:
    """Partitions assigned and lag per partition (end offset - committed offset)."""

    def read() -> Iterator[Metric]:
        current = offsets()
        assigned = GaugeMetricFamily(
            "actionflows_partitions_assigned", "Input and retry partitions assigned to this worker"
        )
        assigned.add_metric([], len(current) if current else 0)
        yield assigned
        lag = GaugeMetricFamily(
            "actionflows_consumer_lag",
            "Records on a partition not yet committed by this worker's group",
            labels=["topic", "partition"],
        )
        for (topic, partition), (end, committed) in sorted((current or _NO_OFFSETS).items()):
            if end is not None:
                lag.add_metric([topic, str(partition)], max(0, end - (committed or 0)))
        yield lag

    return _Gauges(read)


#: (topic, partition) → (end offset, committed offset), either unknown (None) for now.
ConsumerOffsets = dict[tuple[str, int], tuple[int | None, int | None]]
_NO_OFFSETS: ConsumerOffsets = {}


def faust_offsets(app: Any) -> Callable[[], ConsumerOffsets | None]:
    """Reads a running faust app's consumer: its assignment, the high-water mark of each
    partition (from fetch responses), and what this worker committed (faust keeps it as the
    next offset to read, loaded at assignment and updated at each commit)."""
    from faust.exceptions import ConsumerNotStarted

    def read() -> ConsumerOffsets | None:
        consumer = app._consumer  # not app.consumer: reading must not create one
        if consumer is None:
            return None
        committed = consumer._committed_offset  # faust keeps no public accessor for it
        try:
            return {
                (tp.topic, tp.partition): (consumer.highwater(tp), committed.get(tp))
                for tp in consumer.assignment()
            }
        except ConsumerNotStarted:  # before start and after stop
            return None

    return read
