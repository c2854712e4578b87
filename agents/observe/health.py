"""Liveness and readiness, each as JSON that says why.

``/healthz`` (live): the process's loops are turning — the event loop's heartbeat is fresh and
the faust worker has not crashed. A failing liveness check means "restart me".
``/readyz`` (ready): the worker can do its job — partitions are assigned, the ledger's tail is
alive and caught up, the broker answers a metadata request, and Salesforce has not refused the
login. A failing readiness check means "do not count on me now"; it may heal on its own.

A :class:`Health` holds named checks; each answers a :class:`Check` (``ok`` and a ``detail``
sentence). The pieces here are what the checks read: :class:`Heartbeat`, :class:`BrokerProbe`,
:class:`LoginState` (fed by the Salesforce client's calls) and :func:`ledger_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agents.kafka_client import client_options
from agents.ledger import KafkaLedger, LedgerStatus
from agents.observe.metrics import ConsumerOffsets
from agents.settings import PLAINTEXT, KafkaSecurity
from salesforce.calls import CallInfo
from topics.redaction import scrub

log = logging.getLogger(__name__)


class _CollectorTime:
    """The seconds the garbage collector has run since :meth:`install` (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def install(self) -> None:
        if self._time not in gc.callbacks:
            gc.callbacks.append(self._time)

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._time)

    def _time(self, phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Report:
    checks: Mapping[str, Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


LiveCheck = Callable[[], Check]
ReadyCheck = Callable[[], Awaitable[Check]]


class Health:
    """Named liveness checks (cheap, synchronous) and readiness checks (may ask the broker)."""

    def __init__(
        self, live: Mapping[str, LiveCheck], ready: Mapping[str, ReadyCheck] | None = None
    ) -> None:
        self.live_checks = dict(live)
        self.ready_checks = dict(ready or {})

    def live(self) -> Report:
        return Report({name: check() for name, check in self.live_checks.items()})

    async def ready(self) -> Report:
        names = list(self.ready_checks)
        results = await asyncio.gather(*(self.ready_checks[name]() for name in names))
        return Report(dict(zip(names, results, strict=True)))


#: A beat this much later than due is logged: nothing else ran on the event loop meanwhile.
HELD_WARNING_S = 0.5


class Heartbeat:
    """A task that notes the time every ``interval_s``: if the event loop is blocked or the task
    died, the note goes stale.

    Each beat also measures how late it came (the event loop's lag: how long ready work waited
    for the loop), hands it to ``on_lag`` (a histogram), and logs a beat later than
    :data:`HELD_WARNING_S` with the time the garbage collector took meanwhile, so that a stall
    is placed: the collector, or code that held the loop."""

    def __init__(
        self,
        interval_s: float = 1.0,
        stale_after_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._on_lag = on_lag
        self.last = clock()
        self._task: asyncio.Task[None] | None = None
        self._collecting = _CollectorTime()

    def start(self) -> None:
        self.last = self._clock()
        self._collecting.install()
        self._task = asyncio.create_task(self._beat(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._collecting.remove()

    async def _beat(self) -> None:
        while True:
            self.last = self._clock()
            collected = self._collecting.seconds
            await asyncio.sleep(self.interval_s)  # the beat itself, not a synchronisation
            self._lagged(self._clock() - self.last - self.interval_s, collected)

    def _lagged(self, lag_s: float, collected_before_s: float) -> None:
        lag_s = max(lag_s, 0.0)
        if self._on_lag is not None:
            self._on_lag(lag_s)
        if lag_s >= HELD_WARNING_S:
            collecting = self._collecting.seconds - collected_before_s
            log.warning(
                "the event loop was held for %.2fs (%.2fs of it in garbage collection)",
                lag_s, min(collecting, lag_s),
            )  # fmt: skip

    def check(self) -> Check:
        if self._task is None or self._task.done():
            return Check(False, "the heartbeat task is not running")
        age = self._clock() - self.last
        if age > self.stale_after_s:
            return Check(False, f"the event loop has not turned for {age:.1f}s")
        return Check(True, f"the event loop turned {age:.1f}s ago")


class BrokerProbe:
    """Asks the cluster for its metadata, with a deadline."""

    def __init__(
        self, bootstrap_servers: str, timeout_s: float = 5.0, *, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> Check:
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._admin is None:
                    admin = AIOKafkaAdminClient(
                        bootstrap_servers=self.bootstrap_servers,
                        **client_options(self.security),
                        request_timeout_ms=int(self.timeout_s * 1000),
                    )
                    await admin.start()
                    self._admin = admin
                cluster = await self._admin.describe_cluster()
        except TimeoutError:
            return Check(False, f"the broker did not answer within {self.timeout_s:g}s")
        except (KafkaError, OSError) as error:
            return Check(False, f"the broker is unreachable: {error!r}")
        brokers = len(cluster.get("brokers") or ())
        return Check(
            True, f"{brokers} broker(s) answered, controller {cluster.get('controller_id')}"
        )

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


class LoginState:
    """Whether Salesforce accepted this worker's last login: fed every call the client makes
    (:meth:`observe` is an ``on_call`` listener), it reads the token endpoint's answers."""

    def __init__(self) -> None:
        self.refused: CallInfo | None = None
        self.accepted: CallInfo | None = None

    def observe(self, call: CallInfo) -> None:
        if call.resource != "oauth2/token" or call.status is None:
            return  # no answer is not a refusal: the transport retries it
        if call.status == 200:
            self.accepted, self.refused = call, None
        elif 400 <= call.status < 500:
            self.refused = call

    def check(self) -> Check:
        if self.refused is not None:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.refused.started_at))
            return Check(
                False,
                f"Salesforce refused the login (HTTP {self.refused.status}) at {at}; "
                "runs are paused until it is accepted again (see `actionflows connect`)",
            )
        if self.accepted is None:
            return Check(True, "no login yet (the first call logs in)")
        return Check(True, "Salesforce accepted the last login")


def ledger_status(ledger: object) -> LedgerStatus | None:
    """The ledger's status (:meth:`agents.ledger.KafkaLedger.status`, its error text
    scrubbed), or None for a ledger without one (an in-memory ledger)."""
    if not isinstance(ledger, KafkaLedger):
        return None
    current = ledger.status()
    error = current.last_error
    return replace(current, last_error=scrub(error) if error else None)


def ledger_check(status: Callable[[], LedgerStatus | None]) -> ReadyCheck:
    async def check() -> Check:
        current = status()
        if current is None:
            return Check(True, "the ledger is in memory: nothing to sync")
        if not current.alive:
            why = f": {current.last_error}" if current.last_error else ""
            return Check(False, f"the ledger's tail has stopped{why}")
        if not current.synced:
            return Check(False, "the ledger has not caught up with its topic yet")
        return Check(True, f"the ledger is synced ({current.entries} entries)")

    return check


def partitions_check(
    offsets: Callable[[], ConsumerOffsets | None], rebalancing: Callable[[], bool]
) -> ReadyCheck:
    async def check() -> Check:
        current = offsets()
        if current is None:
            return Check(False, "the consumer has not started")
        if rebalancing():
            return Check(False, "the consumer group is rebalancing")
        if not current:
            return Check(False, "no partitions are assigned to this worker")
        topics: dict[str, list[int]] = {}
        for topic, partition in sorted(current):
            topics.setdefault(topic, []).append(partition)
        listed = "; ".join(f"{t} {','.join(map(str, ps))}" for t, ps in topics.items())
        return Check(True, f"{len(current)} partition(s) assigned: {listed}")

    return check
