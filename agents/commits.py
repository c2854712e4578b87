"""Which offsets may be acknowledged: the contiguous finished prefix of each partition.

Records of one partition finish out of order (tickets run concurrently), but a Kafka commit is a
single offset per partition: committing ``n`` says every record below ``n`` is done. faust
commits the end of the first run of consecutive acknowledged offsets, but skips its check for a
gap at the head while a partition has no committed offset yet (``Consumer._new_offset``), and an
offset acknowledged right after the committed one passes it too (faust#606). So the worker never
lets faust see a gap: a :class:`CommitTracker` registers each record when it is taken, in offset
order per partition, and releases a record for acknowledgement only once it and every record
registered before it on its partition have finished (Confluent Parallel Consumer's model).
What faust has acknowledged is then always a gap-free prefix of what it delivered, and no commit
can pass an unfinished record, whatever faust's own rules.

Pure bookkeeping: no asyncio, no faust. ``P`` is whatever names a partition, ``T`` whatever the
caller acknowledges with (a faust event).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)
T = TypeVar("T")


@dataclass(slots=True, eq=False)
class _Partition(Generic[T]):
    registered: deque[Entry[T]] = field(default_factory=deque)  # unreleased, in offset order
    last: int = -1  # the highest offset registered, released or not
    revoked: bool = False
    held: bool = False  # nothing more is released until the partition is revoked


@dataclass(slots=True, eq=False)
class Entry(Generic[T]):
    """One registered record; hand it back to :meth:`CommitTracker.finish`."""

    offset: int
    value: T
    partition: _Partition[T]
    done: bool = False


class CommitTracker(Generic[P, T]):
    """Per partition: records taken, in offset order, and the finished prefix to release."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition[T]] = {}

    def register(self, partition: P, offset: int, value: T) -> Entry[T]:
        """Record that ``offset`` was taken. Offsets of a partition must increase: one at or
        below an offset taken before (a redelivery without :meth:`revoke` first), released or
        not, raises ValueError."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition()
        if offset <= state.last:
            raise ValueError(f"offset {offset} of {partition!r} registered after {state.last}")
        entry = Entry(offset, value, state)
        state.registered.append(entry)
        state.last = offset
        return entry

    def finish(self, entry: Entry[T]) -> list[T]:
        """Mark ``entry`` finished; return the values now safe to acknowledge, in offset order
        (none while an earlier record of its partition is unfinished, none once the partition
        was revoked or held)."""
        entry.done = True
        state = entry.partition
        released: list[T] = []
        if state.revoked or state.held:
            return released
        registered = state.registered
        while registered and registered[0].done:
            released.append(registered.popleft().value)
        return released

    def hold(self, partitions: Iterable[P]) -> None:
        """Release nothing more for ``partitions`` until they are revoked: for when a record
        may have been lost before it was registered (a gap nobody can see)."""
        for partition in partitions:
            state = self._partitions.get(partition)
            if state is None:
                state = self._partitions[partition] = _Partition()
            state.held = True

    def revoke(self, partitions: Iterable[P]) -> None:
        """Forget ``partitions``: what finishes later for them is never released. Records taken
        after this start a fresh history (the next assignment reads from the committed offset)."""
        for partition in partitions:
            state = self._partitions.pop(partition, None)
            if state is not None:
                state.revoked = True

    def unreleased(self, partition: P) -> int:
        """Records of ``partition`` taken and not yet released (finished or not)."""
        state = self._partitions.get(partition)
        return len(state.registered) if state is not None else 0
