"""The continuous pipeline: records in as they arrive, per-ticket order, at most W in flight.

The worker's consume loops :meth:`~Scheduler.admit` records as faust delivers them. A record
joins the **lane** of its ticket: a lane is a queue and one task that runs its records one after
another, in arrival order; different tickets' lanes run concurrently, so a slow event holds up
only the events of its own ticket. There is no batch and no barrier: a record is acknowledged as
soon as it and every record taken before it on its partition are finished (the
:class:`~agents.commits.CommitTracker` decides), so commits advance while slow records run.

**Backpressure** is the window ``max_in_flight`` (W): records admitted and not yet finished,
across every agent of the worker. A consume loop awaits :meth:`~Scheduler.wait_for_room` before
it admits more, so when W records are in flight faust's buffers fill and it stops fetching. One
task per active ticket, none per record.

**Rebalance**: :meth:`~Scheduler.revoke` forgets the revoked partitions' records: queued ones
are dropped, running ones cancelled at once (the ledger and the upsert keys make a cancelled
step safe to run again), and nothing of theirs is acknowledged any more; whichever worker owns
the partition next reads them again from its committed offset.

**Stop**: :meth:`~Scheduler.drain` starts no new record, drops the queued ones, waits for the
running ones up to a grace period and cancels the rest. What did not finish is never
acknowledged, so it is delivered again.

No faust here: the worker passes the partition key and the token to acknowledge with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agents.commits import CommitTracker, Entry
from agents.observer import EngineObserver, NullObserver

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - the work item
T = TypeVar("T")  # what a record is acknowledged with


@dataclass(slots=True, eq=False)
class _Work(Generic[I, T]):
    partition: Hashable
    item: I
    entry: Entry[T]


@dataclass(slots=True, eq=False)
class _Lane(Generic[I, T]):
    key: str
    queue: deque[_Work[I, T]] = field(default_factory=deque)
    current: _Work[I, T] | None = None
    task: asyncio.Task[None] | None = None


class Scheduler(Generic[I, T]):
    """Runs admitted items by ticket lane and releases their acknowledgements in offset order.

    ``run`` handles one item and must not raise (but for cancellation): it returns True when the
    item is done, False when it was abandoned (the worker is stopping), which leaves it
    unacknowledged. ``acknowledge`` is called with the tokens of records that may now be
    committed, in offset order per partition.
    """

    def __init__(
        self,
        run: Callable[[I], Awaitable[bool]],
        acknowledge: Callable[[list[T]], None],
        *,
        max_in_flight: int,
        observer: EngineObserver | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._run = run
        self._acknowledge = acknowledge
        self.max_in_flight = max_in_flight
        self._observer: EngineObserver = observer or NullObserver()
        self._tracker: CommitTracker[Any, T] = CommitTracker()
        self._lanes: dict[str, _Lane[I, T]] = {}
        self.in_flight = 0
        self.stopping = False
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_for_room(self, records: int = 1) -> None:
        """Return once ``records`` more fit in the window (or nothing is in flight)."""
        while self.in_flight and self.in_flight + records > self.max_in_flight:
            self._room.clear()
            await self._room.wait()

    def admit(self, partition: Hashable, offset: int, lane: str, item: I, token: T) -> None:
        """Take one record: it runs after the records already in ``lane``. Offsets of a
        partition come in increasing order (as Kafka delivers them); an offset at or below one
        taken already in this assignment is not taken twice. Nothing is taken once
        :meth:`drain` started."""
        if self.stopping:
            return
        try:
            entry = self._tracker.register(partition, offset, token)
        except ValueError:
            log.warning("%r@%d delivered again: not taken twice", partition, offset)
            return
        work = _Work(partition, item, entry)
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = _Lane(lane)
        queue.queue.append(work)
        self._count(1)
        if queue.task is None:
            queue.task = asyncio.create_task(self._drain(queue), name=f"lane:{lane}")

    def hold(self, partitions: Iterable[Hashable]) -> None:
        """Acknowledge nothing more for ``partitions`` until they are revoked (a stall the logs
        explain, never a commit past a record that was lost before it was taken)."""
        self._tracker.hold(partitions)

    def revoke(self, partitions: Iterable[Hashable]) -> int:
        """Stop every record of ``partitions``: drop the queued, cancel the running. Returns how
        many records were stopped; none of them will be acknowledged."""
        revoked = set(partitions)
        self._tracker.revoke(revoked)
        stopped = 0
        for lane in list(self._lanes.values()):
            kept = deque(work for work in lane.queue if work.partition not in revoked)
            stopped += len(lane.queue) - len(kept)
            lane.queue = kept
            if lane.current is not None and lane.current.partition in revoked:
                stopped += 1
                self._restart(lane)
        self._count(-stopped)
        return stopped

    async def drain(self, grace_s: float) -> bool:
        """Stop: run nothing new, let the running records finish for up to ``grace_s``, then
        cancel what is left. Returns whether everything running finished in time."""
        self.stopping = True
        dropped = sum(len(lane.queue) for lane in self._lanes.values())
        for lane in self._lanes.values():
            lane.queue.clear()
        self._count(-dropped)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_s)
        finished = self._idle.is_set()
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for lane in self._lanes.values():
            lane.task = None  # what still finishes is not acknowledged
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._count(-self.in_flight)
        return finished

    async def wait_idle(self) -> None:
        """Return once nothing is in flight (tests; :meth:`drain` for stopping)."""
        await self._idle.wait()

    def unreleased(self, partition: Hashable) -> int:
        """Records of ``partition`` taken and not yet acknowledged."""
        return self._tracker.unreleased(partition)

    async def _drain(self, lane: _Lane[I, T]) -> None:
        me = asyncio.current_task()
        while lane.task is me and lane.queue and not self.stopping:
            work = lane.current = lane.queue.popleft()
            done = await self._run(work.item)
            if lane.task is not me:  # revoked while it ran: the lane is another task's now
                return
            lane.current = None
            self._count(-1)
            if done and (released := self._tracker.finish(work.entry)):
                self._acknowledge(released)
        if lane.task is me:
            lane.task = None
            if lane.queue:  # stopping: the rest is never run nor acknowledged
                self._count(-len(lane.queue))
                lane.queue.clear()
            del self._lanes[lane.key]

    def _restart(self, lane: _Lane[I, T]) -> None:
        """Cancel the lane's running record; its task is replaced if records remain."""
        if lane.task is not None:
            lane.task.cancel()
        lane.current = None
        if lane.queue:
            lane.task = asyncio.create_task(self._drain(lane), name=f"lane:{lane.key}")
        else:
            lane.task = None
            del self._lanes[lane.key]

    def _count(self, change: int) -> None:
        if not change:
            return
        self.in_flight += change
        self._observer.in_flight(self.in_flight)
        if change < 0:
            self._room.set()  # waiters check whether there is room enough for them
        if self.in_flight == 0:
            self._idle.set()
        else:
            self._idle.clear()
