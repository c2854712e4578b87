"""The scheduler without Kafka: lanes per ticket, the in-flight window, acknowledgement order,
revocation and stop. Work items are small scripts the test controls with asyncio events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from agents.scheduler import Scheduler


@dataclass(eq=False)
class Job:
    name: str
    gate: asyncio.Event | None = None  # None: finishes at once
    result: bool = True
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False


class Harness:
    def __init__(self, max_in_flight: int = 100) -> None:
        self.ran: list[str] = []
        self.acked: list[str] = []
        self.running = 0
        self.most_running = 0
        self.changed = asyncio.Event()
        self.scheduler: Scheduler[Job, str] = Scheduler(
            self.run, self.acked.extend, max_in_flight=max_in_flight
        )

    async def run(self, job: Job) -> bool:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        job.started.set()
        try:
            if job.gate is not None:
                await job.gate.wait()
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        finally:
            self.running -= 1
        self.ran.append(job.name)
        self.changed.set()  # no await until the scheduler has acknowledged what it may
        return job.result

    async def wait_ran(self, count: int) -> None:
        while len(self.ran) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)

    def admit(self, partition: str, offset: int, lane: str, job: Job) -> None:
        self.scheduler.admit(partition, offset, lane, job, job.name)


async def test_a_slow_record_holds_up_only_its_own_ticket() -> None:
    """A record that does not finish delays the later records of its ticket, and nothing else:
    other tickets' records on the same partition run and finish meanwhile."""
    h = Harness()
    slow = Job("a0", asyncio.Event())
    h.admit("p", 0, "A", slow)
    h.admit("p", 1, "A", Job("a1"))
    for offset, ticket in enumerate("BCD", start=2):
        h.admit("p", offset, ticket, Job(f"{ticket.lower()}{offset}"))
    await h.wait_ran(3)
    assert h.ran == ["b2", "c3", "d4"]
    assert "a1" not in h.ran  # behind a0, in its ticket's order
    slow.gate.set()  # type: ignore[union-attr]
    await asyncio.wait_for(h.scheduler.wait_idle(), 10)
    assert h.ran[3:] == ["a0", "a1"]


async def test_only_the_finished_prefix_of_a_partition_is_acknowledged() -> None:
    """Records finishing out of order are acknowledged in offset order, and none past an
    unfinished one: the head's slowness holds the acknowledgements, not the work."""
    h = Harness()
    head = Job("0", asyncio.Event())
    h.admit("p", 0, "A", head)
    for offset in range(1, 5):
        h.admit("p", offset, f"T{offset}", Job(str(offset)))
    h.admit("q", 0, "Q", Job("q0"))  # another partition is not held
    await h.wait_ran(5)
    assert h.acked == ["q0"]
    head.gate.set()  # type: ignore[union-attr]
    await asyncio.wait_for(h.scheduler.wait_idle(), 10)
    assert h.acked == ["q0", "0", "1", "2", "3", "4"]


async def test_no_more_than_the_window_runs_at_once() -> None:
    """With W=3, a fourth record waits for room; records of 10 tickets never run more than 3
    at a time, and all of them finish."""
    h = Harness(max_in_flight=3)
    gate = asyncio.Event()
    admitted: list[Job] = []

    async def feed() -> None:
        for offset in range(10):
            await h.scheduler.wait_for_room()
            admitted.append(Job(str(offset), gate))
            h.admit("p", offset, f"T{offset}", admitted[-1])

    feeder = asyncio.create_task(feed())
    for _ in range(5):  # the feeder has every chance to take more than it may
        await asyncio.sleep(0)
    await asyncio.wait_for(admitted[2].started.wait(), 10)
    assert len(admitted) == 3
    assert h.scheduler.in_flight == 3
    gate.set()
    await asyncio.wait_for(feeder, 10)
    await asyncio.wait_for(h.scheduler.wait_idle(), 10)
    assert h.most_running <= 3
    assert h.acked == [str(i) for i in range(10)]


async def test_revoking_a_partition_cancels_its_running_records_and_acknowledges_none() -> None:
    """Revocation cancels the running record of a revoked partition at once, drops its queued
    ones, and acknowledges none of them; a lane's records of other partitions go on."""
    h = Harness()
    running = Job("p0", asyncio.Event())
    h.admit("p", 0, "A", running)
    h.admit("q", 0, "A", Job("q0"))  # same ticket, another partition (an interaction topic)
    h.admit("p", 1, "B", Job("p1", asyncio.Event()))
    h.admit("p", 2, "B", Job("p2"))
    await asyncio.wait_for(running.started.wait(), 10)
    stopped = h.scheduler.revoke(["p"])
    assert stopped == 3
    await asyncio.wait_for(h.scheduler.wait_idle(), 10)
    assert running.cancelled
    assert h.ran == ["q0"]
    assert h.acked == ["q0"]


async def test_drain_lets_running_records_finish_drops_queued_ones_and_cancels_the_rest() -> None:
    """Stop: a running record that finishes within the grace is acknowledged; queued records
    never run; one still running at the end of the grace is cancelled, unacknowledged."""
    h = Harness()
    quick_gate, stuck_gate = asyncio.Event(), asyncio.Event()
    quick, stuck = Job("0", quick_gate), Job("1", stuck_gate)
    h.admit("p", 0, "A", quick)
    h.admit("p", 1, "B", stuck)
    h.admit("p", 2, "A", Job("2"))
    await asyncio.wait_for(stuck.started.wait(), 10)
    draining = asyncio.create_task(h.scheduler.drain(grace_s=0.5))
    await asyncio.sleep(0)
    quick_gate.set()
    finished = await asyncio.wait_for(draining, 10)
    assert not finished
    assert stuck.cancelled
    assert h.ran == ["0"]
    assert h.acked == ["0"]
    assert h.scheduler.in_flight == 0


async def test_an_abandoned_record_is_not_acknowledged_nor_anything_after_it() -> None:
    """A record whose handling was abandoned (the worker stopping) keeps its partition's
    acknowledgements behind it."""
    h = Harness()
    h.admit("p", 0, "A", Job("0", result=False))
    h.admit("p", 1, "B", Job("1"))
    await asyncio.wait_for(h.scheduler.wait_idle(), 10)
    assert h.ran == ["0", "1"]
    assert h.acked == []


@pytest.mark.parametrize("window", [0, -1])
def test_the_window_must_hold_a_record(window: int) -> None:
    """A window below one record is refused."""
    with pytest.raises(ValueError, match="max_in_flight"):
        Scheduler(Harness().run, print, max_in_flight=window)
