"""Seeing what a worker does: metrics, health, structured logs and traces (docs/operations.md).

- :mod:`agents.observe.metrics` — Prometheus metrics, fed as an engine observer and by the
  Salesforce client's calls, plus figures read at scrape time (lag, budget, ledger);
- :mod:`agents.observe.tracing` — OpenTelemetry spans per run, step and Salesforce call, and the
  ``traceparent`` of every published record;
- :mod:`agents.observe.health` — ``/healthz`` and ``/readyz`` checks;
- :mod:`agents.observe.logs` — text or JSON log lines with the event, ticket, flow, step and
  trace they concern, redacted;
- :mod:`agents.observe.http` — the aiohttp app (bearer token, audit log) that serves them.

:class:`Observability` puts them together for one worker; :mod:`agents.service` calls it in a
few lines and the engine sees only its :class:`~agents.observer.EngineObserver`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agents.ledger import LedgerStatus
from agents.observe.health import (
    BrokerProbe,
    Check,
    Health,
    Heartbeat,
    LoginState,
    ledger_check,
    ledger_status,
    partitions_check,
)
from agents.observe.http import Server, application, health_routes
from agents.observe.metrics import (
    Metrics,
    budget_collector,
    consumer_collector,
    faust_offsets,
    ledger_collector,
)
from agents.observe.tracing import Tracing, provider
from agents.observer import EngineObserver, NullObserver
from agents.outcomes import Outcomes
from agents.settings import PLAINTEXT, KafkaSecurity, ObserveSettings
from pipeline.ledger import Ledger, StepRecord
from pipeline.runner import Ports

if TYPE_CHECKING:
    from prometheus_client import Histogram

    from agents.engine import Engine
    from agents.outcomes import Inbound
    from pipeline.events import Event
    from pipeline.plan import Plan
    from pipeline.result import RunResult
    from salesforce.budget import BudgetGovernor
    from salesforce.client import SalesforceClient

__all__ = ["Observability", "Observers"]


class Observers:
    """Several engine observers as one; each ``run`` wraps the next."""

    def __init__(self, *observers: EngineObserver) -> None:
        self.observers = observers
        # Only observers that wrap a run do anything in ``run`` (it is entered once per run).
        self._wrapping = tuple(o for o in observers if type(o).run is not NullObserver.run)

    def record_in(self, record: Inbound) -> None:
        for observer in self.observers:
            observer.record_in(record)

    def decoded(self, record: Inbound, event: Event) -> None:
        for observer in self.observers:
            observer.decoded(record, event)

    def run(
        self, record: Inbound, event: Event, plan: Plan
    ) -> contextlib.AbstractContextManager[None]:
        if len(self._wrapping) == 1:
            return self._wrapping[0].run(record, event, plan)
        return self._nested(record, event, plan)

    @contextlib.contextmanager
    def _nested(self, record: Inbound, event: Event, plan: Plan) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for observer in self._wrapping:
                stack.enter_context(observer.run(record, event, plan))
            yield

    def run_finished(self, plan: Plan, result: RunResult, elapsed_s: float) -> None:
        for observer in self.observers:
            observer.run_finished(plan, result, elapsed_s)

    def no_match(self, record: Inbound, event: Event) -> None:
        for observer in self.observers:
            observer.no_match(record, event)

    def dead_letter(self, record: Inbound, reason: str) -> None:
        for observer in self.observers:
            observer.dead_letter(record, reason)

    def in_flight(self, count: int) -> None:
        for observer in self.observers:
            observer.in_flight(count)

    def paused(self, cause: str) -> None:
        for observer in self.observers:
            observer.paused(cause)

    def resumed(self) -> None:
        for observer in self.observers:
            observer.resumed()


class TimedLedger:
    """A :class:`~pipeline.ledger.Ledger` that times how long ``sync`` waits."""

    def __init__(self, inner: Ledger, histogram: Histogram) -> None:
        self.inner = inner
        self.histogram = histogram

    async def get(self, run_key: str, step_id: str) -> StepRecord | None:
        return await self.inner.get(run_key, step_id)

    async def put(self, run_key: str, step_id: str, record: StepRecord) -> None:
        await self.inner.put(run_key, step_id, record)

    async def sync(self) -> None:
        with self.histogram.time():
            await self.inner.sync()


class Observability:
    """Metrics, traces and health of one worker, and the HTTP server that shows them."""

    def __init__(
        self,
        settings: ObserveSettings,
        *,
        app: Any,
        bootstrap_servers: str,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        """``app``: the worker's faust app (its consumer's assignment and offsets)."""
        self.settings = settings
        self.metrics = Metrics()
        self.tracing = Tracing(provider(otlp=settings.otlp))
        self.observer = Observers(self.metrics, self.tracing)
        self.heartbeat = Heartbeat(on_lag=self.metrics.loop_lag.observe)
        self.broker = BrokerProbe(bootstrap_servers, security=security)
        self.login = LoginState()
        self._ledger: object = None
        offsets = faust_offsets(app)
        self.metrics.collect_from(consumer_collector(offsets))
        self.metrics.collect_from(ledger_collector(self.ledger_status))

        def worker() -> Check:
            if app.crashed:
                return Check(False, f"the faust worker crashed: {app.crash_reason!r}")
            return Check(True, f"the faust worker is {app.state}")

        async def salesforce() -> Check:
            return self.login.check()

        self.health = Health(
            live={"event_loop": self.heartbeat.check, "worker": worker},
            ready={
                "partitions": partitions_check(offsets, lambda: bool(app.rebalancing)),
                "ledger": ledger_check(self.ledger_status),
                "broker": self.broker.check,
                "salesforce": salesforce,
            },
        )
        self.server: Server | None = None

    def ledger_status(self) -> LedgerStatus | None:
        return ledger_status(self._ledger)

    def wrap_ports(self, ports: Ports) -> Ports:
        """Step spans around the executor; the ledger's sync timed."""
        return dataclasses.replace(
            ports,
            execute=self.tracing.traced_execute(
                ports.execute,
                on_retry=lambda action: self.metrics.step_retried(action.kind, action.object),
            ),
            ledger=TimedLedger(ports.ledger, self.metrics.ledger_sync),
        )

    def attach(
        self,
        engine: Engine,
        *,
        client: SalesforceClient,
        governor: BudgetGovernor,
        ledger: object,
    ) -> None:
        """Trace headers on the engine's outcomes; metrics and health from the client, the
        budget governor and the ledger."""
        engine.outcomes = Outcomes(
            engine.catalogue,
            redact_keys=engine.settings.redact_keys,
            trace=self.tracing.headers_for,
        )
        for listener in (self.metrics.salesforce_call, self.tracing.salesforce_call):
            client.on_call(listener)
        client.on_call(self.login.observe)
        self.metrics.collect_from(budget_collector(governor))
        self._ledger = ledger

    async def start(self) -> None:
        self.heartbeat.start()
        http = self.settings.http
        if http is not None:
            app = application(http)
            health_routes(app, self.health, self.metrics.registry)
            self.server = await Server(app, http.host, http.port).start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        await self.heartbeat.stop()
        await self.broker.close()
        self.tracing.shutdown()
