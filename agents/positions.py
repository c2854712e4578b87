"""Where each assigned partition is read from after a rebalance: set here, not left to faust.

**Why.** After a rebalance faust can drop records it has already fetched for the new
assignment. A fetch its consumer thread had in flight when the rebalance began waits for the new
assignment and drains it; faust discards that batch while its flow is stopped (or skips the
records of partitions it has paused), then "seeks back to the committed offsets". But aiokafka's
``seek_to_committed`` seeks only where a committed offset above 0 exists, so a partition with no
committed offset keeps a fetch position past records that never reached a stream. Nothing
delivers them again: the partition stalls, and once a later record of it is acknowledged, faust
commits past them (it does not check for a gap at the head of a partition never committed).

**How.** Each assignment is positioned here, whatever faust did with the fetches around it:

1. When partitions are assigned (faust's flow is stopped then), the worker's partitions are
   *paused in the Kafka client* — from then on nothing of them is fetched, so faust can drop
   nothing more — and each is moved to its committed offset, or to its beginning when it has
   none (``earliest``: the app's ``auto_offset_reset``; a committed 0 counts as committed).
2. When faust has finished the rebalance (partitions resumed, flow on: a sensor's
   ``on_rebalance_end``), they are resumed, and the generation is *open*: from here on every
   record fetched is handed on, from the position set in step 1.
3. The worker takes records of the open generation only. A record of an older generation is
   dropped (it is delivered again, from where the new generation starts); one of the current
   generation that arrives before the opening waits for it. The generation closes the moment
   the next rebalance begins (the sensor's ``on_rebalance_start``), and nothing is acknowledged
   while it is closed: that rebalance revokes every partition, to be read again from the
   committed offsets.

Steps 1 and 2 run in faust's consumer thread, where the Kafka client lives (faust has no way to
pause a partition in the client: its own pause only filters what it hands on, dropping the
rest). Errors of the broker while positioning are retried with backoff for as long as the
assignment stands.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition
from faust.sensors import Sensor
from faust.types import TP

from agents.delivery import backoff

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Assignment:
    generation: int
    epoch: int  # rebalances begun when it was assigned: a later one supersedes it
    partitions: list[TopicPartition]
    positioned: asyncio.Task[bool] | None = None
    opening: asyncio.Task[None] | None = None
    starts: dict[TopicPartition, int] = field(default_factory=dict)


class Positions:
    """Positions the worker's partitions after every assignment and says which records of
    which generation may be taken and acknowledged (see the module docstring)."""

    def __init__(self, app: faust.App, topics: Collection[str]) -> None:
        self._app = app
        self._topics = frozenset(topics)
        self._lock = threading.Lock()  # the consumer thread closes, the event loop opens
        self._epoch = 0
        self._open: int | None = None  # the generation whose records may be taken
        self._fence = -1  # generations up to this one were revoked
        self._assignment: _Assignment | None = None
        self._changed = asyncio.Event()
        self.stopped = False
        app.sensors.add(_Rebalances(self))

    def is_open(self, generation: int | None) -> bool:
        """Whether records of ``generation`` may be acknowledged now (and taken, unless the
        worker is stopping: what is in flight then still finishes and is acknowledged)."""
        return generation is not None and generation == self._open

    def taking(self, generation: int | None) -> bool:
        """Whether records of ``generation`` may be taken now (:meth:`ready` waits for it)."""
        return self.is_open(generation) and not self.stopped

    def stale(self, generation: int | None) -> bool:
        """Whether records of ``generation`` will never be taken (revoked, or stopping)."""
        return (
            self.stopped
            or generation is None
            or generation <= self._fence
            or generation < self._app.consumer_generation_id
        )

    async def ready(self, generation: int | None) -> bool:
        """Wait until records of ``generation`` may be taken: True once it is open, False if
        they never will be."""
        while not self.stale(generation):
            if self.taking(generation):
                return True
            await self._changed.wait()
        return False

    def assigned(self, partitions: Iterable[TP]) -> None:
        """faust assigned ``partitions`` (its flow is stopped): pause and position ours."""
        self._cancel()
        mine = sorted(TopicPartition(tp.topic, tp.partition) for tp in partitions
                      if tp.topic in self._topics)  # fmt: skip
        with self._lock:
            assignment = _Assignment(self._app.consumer_generation_id, self._epoch, mine)
        assignment.positioned = asyncio.create_task(
            self._position(assignment), name=f"position:{assignment.generation}"
        )
        self._assignment = assignment
        self._wake()

    def revoked(self) -> None:
        """faust revoked the assignment: nothing of its generation is taken any more."""
        with self._lock:
            self._open = None
        self._fence = max(self._fence, self._app.consumer_generation_id)
        self._cancel()
        self._wake()

    def stop(self) -> None:
        """Take nothing more (the worker stops)."""
        self.stopped = True
        self._cancel()
        self._wake()

    def _closed(self) -> None:
        """A rebalance begins (faust's consumer thread: no asyncio here)."""
        with self._lock:
            self._epoch += 1
            self._open = None

    def _rebalance_ended(self) -> None:
        """faust finished a rebalance: its partitions are resumed and its flow is on."""
        assignment = self._assignment
        if assignment is None or assignment.opening is not None or self.stopped:
            return
        if assignment.generation != self._app.consumer_generation_id:
            return  # a later assignment is on its way
        assignment.opening = asyncio.create_task(
            self._open_when_positioned(assignment), name=f"open:{assignment.generation}"
        )

    def _holds(self, assignment: _Assignment) -> bool:
        return (
            assignment is self._assignment
            and assignment.epoch == self._epoch
            and not self.stale(assignment.generation)
        )

    async def _position(self, assignment: _Assignment) -> bool:
        """Pause the assignment's partitions and seek each to where it starts; True once done,
        False if the assignment was superseded first."""
        failures = 0
        while self._holds(assignment):
            try:
                assignment.starts = await _in_consumer_thread(
                    self._app, _pause_and_seek, assignment.partitions
                )
            except IllegalStateError:
                return False  # no longer assigned: a newer assignment is positioned instead
            except KafkaError as error:
                failures += 1
                delay = backoff(failures)
                log.warning(
                    "could not position generation %d's partitions (%r); retrying in %.1fs",
                    assignment.generation, error, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            log.info(
                "generation %d starts at %s", assignment.generation,
                ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in assignment.starts.items()),
            )  # fmt: skip
            return True
        return False

    async def _open_when_positioned(self, assignment: _Assignment) -> None:
        assert assignment.positioned is not None
        if not await assignment.positioned:
            return
        failures = 0
        while self._holds(assignment):
            try:
                await _in_consumer_thread(self._app, _resume, assignment.partitions)
            except IllegalStateError:
                return
            except KafkaError as error:  # not raised by a resume today; retried all the same
                failures += 1
                await asyncio.sleep(backoff(failures))
                log.warning("could not resume generation %d (%r)", assignment.generation, error)
                continue
            with self._lock:
                if assignment.epoch != self._epoch:
                    return  # a rebalance began meanwhile: it will open its own generation
                self._open = assignment.generation
            self._wake()
            return

    def _cancel(self) -> None:
        assignment, self._assignment = self._assignment, None
        if assignment is not None:
            for task in (assignment.positioned, assignment.opening):
                if task is not None:
                    task.cancel()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class _Rebalances(Sensor):
    """faust's hooks at both ends of a rebalance: ``on_rebalance_start`` is called in its
    consumer thread as the group begins to rejoin, ``on_rebalance_end`` once the new assignment
    is recovered, resumed and flowing (the only hook that late)."""

    def __init__(self, positions: Positions) -> None:
        super().__init__()
        self._positions = positions

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self._positions._closed()
        return super().on_rebalance_start(app)

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        self._positions._rebalance_ended()


async def _in_consumer_thread(app: faust.App, function: Any, *args: Any) -> Any:
    """Run ``function(aiokafka consumer, *args)`` in faust's consumer thread, where the client
    lives (faust's own calls there go through the same queue)."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    return await thread.call_thread(function, thread._ensure_consumer(), *args)


async def _pause_and_seek(
    consumer: Any, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """In the consumer thread: pause first (no fetch of them is handed to faust from now on),
    then seek each partition to its committed offset, or its beginning if it has none."""
    if not partitions:
        return {}
    consumer.pause(*partitions)
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
    starts: dict[TopicPartition, int] = {
        tp: offset for tp, offset in zip(partitions, committed, strict=True) if offset is not None
    }
    if missing := [tp for tp in partitions if tp not in starts]:
        starts.update(await consumer.beginning_offsets(missing))
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    return {tp: starts[tp] for tp in partitions}


async def _resume(consumer: Any, partitions: list[TopicPartition]) -> None:
    if partitions:
        consumer.resume(*partitions)
