"""What the engine tells whoever watches it: the seam between the engine and its metrics, traces
and health.

The engine calls an :class:`EngineObserver` at fixed points of a record's life; it never imports
Prometheus or OpenTelemetry itself. :class:`NullObserver` (the default) does nothing, so the engine
and its tests need no observability stack. Calls must be cheap and must not raise: they run on the
hot path, inside the engine's per-record guard.

Order for one consumed record: ``record_in`` → (``decoded`` | a dead letter) → for each matching
flow ``run`` (a context manager around the run, so spans opened inside it nest) then
``run_finished`` → ``no_match`` when no flow matched → ``dead_letter`` for each letter published.
``in_flight`` reports the number of records taken but not yet finished whenever it changes;
``paused``/``resumed`` bracket a pause of all processing with its cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agents.outcomes import Inbound
    from pipeline.events import Event
    from pipeline.plan import Plan
    from pipeline.result import RunResult


class EngineObserver(Protocol):
    def record_in(self, record: Inbound) -> None:
        """A record was taken from ``record.topic`` (input or retry tier)."""
        ...

    def decoded(self, record: Inbound, event: Event) -> None:
        """The record decoded into ``event`` (``event.type`` is known from here on)."""
        ...

    def run(
        self, record: Inbound, event: Event, plan: Plan
    ) -> contextlib.AbstractContextManager[None]:
        """Wraps one run of ``plan`` for ``event``; the runner's steps execute inside it."""
        ...

    def run_finished(self, plan: Plan, result: RunResult, elapsed_s: float) -> None:
        """A run ended (succeeded, skipped, retry later or dead letter); ``result.steps`` carry
        each step's action, object, status and duration."""
        ...

    def no_match(self, record: Inbound, event: Event) -> None:
        """No flow matched the event."""
        ...

    def dead_letter(self, record: Inbound, reason: str) -> None:
        """A dead letter with this stable reason code is being published for ``record``."""
        ...

    def in_flight(self, count: int) -> None:
        """Records taken and not yet finished, across every agent of this worker."""
        ...

    def paused(self, cause: str) -> None:
        """Processing holds (cause: ``budget``, ``login_refused``, …) until :meth:`resumed`."""
        ...

    def resumed(self) -> None: ...


class NullObserver:
    """Observes nothing; the default."""

    def record_in(self, record: Inbound) -> None:
        pass

    def decoded(self, record: Inbound, event: Event) -> None:
        pass

    @contextlib.contextmanager
    def run(self, record: Inbound, event: Event, plan: Plan) -> Iterator[None]:
        yield

    def run_finished(self, plan: Plan, result: RunResult, elapsed_s: float) -> None:
        pass

    def no_match(self, record: Inbound, event: Event) -> None:
        pass

    def dead_letter(self, record: Inbound, reason: str) -> None:
        pass

    def in_flight(self, count: int) -> None:
        pass

    def paused(self, cause: str) -> None:
        pass

    def resumed(self) -> None:
        pass
