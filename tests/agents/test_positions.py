"""Positions without a broker: what is paused, sought and resumed when, and which generation's
records may be taken and acknowledged. A fake stands in for the Kafka client in faust's consumer
thread; the test plays faust's part (the rebalance hooks, in faust's order)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError, KafkaConnectionError
from aiokafka.structs import TopicPartition
from faust.types import TP

import agents.positions
from agents.positions import Positions

TOPIC, OTHER = "t.tickets", "someone-elses"


@dataclass
class FakeClient:
    """The Kafka client as the positions see it: committed offsets, beginnings, and a log of
    what was done to it."""

    committed_offsets: dict[int, int | None]
    beginnings: dict[int, int]
    assigned: set[int]
    failures: list[BaseException] = field(default_factory=list)  # raised by lookups, in turn
    calls: list[tuple[str, Any]] = field(default_factory=list)
    sought: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def _check(self, tps: tuple[TopicPartition, ...]) -> None:
        assert all(isinstance(tp, TopicPartition) for tp in tps)  # as aiokafka insists
        if any(tp.partition not in self.assigned for tp in tps):
            raise IllegalStateError("not assigned")

    def pause(self, *tps: TopicPartition) -> None:
        self._check(tps)
        self.calls.append(("pause", sorted(tp.partition for tp in tps)))

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append(("committed", tp.partition))
        return self.committed_offsets[tp.partition]

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.calls.append(("beginnings", sorted(tp.partition for tp in tps)))
        return {tp: self.beginnings[tp.partition] for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check((tp,))
        self.calls.append(("seek", (tp.partition, offset)))
        if sum(1 for call, _ in self.calls if call == "seek") == len(self.committed_offsets):
            self.sought.set()

    def resume(self, *tps: TopicPartition) -> None:
        self._check(tps)
        self.calls.append(("resume", sorted(tp.partition for tp in tps)))
        self.resumed.set()

    def done(self, call: str) -> list[Any]:
        return [args for name, args in self.calls if name == call]


class FakeThread:
    """faust's consumer thread: runs what it is handed (here, on the test's own loop)."""

    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.gate: asyncio.Event | None = None  # when set: calls wait for it

    def _ensure_consumer(self) -> FakeClient:
        return self.client

    async def call_thread(self, function: Any, *args: Any) -> Any:
        if self.gate is not None:
            await self.gate.wait()
        return await function(*args)


class Faust:
    """The parts of a faust app the positions use, and faust's rebalance steps."""

    def __init__(self, client: FakeClient) -> None:
        self.thread = FakeThread(client)
        self.app: Any = SimpleNamespace(
            consumer_generation_id=0,
            consumer=SimpleNamespace(_thread=self.thread),
            sensors=set(),
        )
        self.positions = Positions(self.app, [TOPIC])
        (self.sensor,) = self.app.sensors

    def rebalance_begins(self) -> None:
        self.sensor.on_rebalance_start(self.app)  # in faust's consumer thread
        self.positions.revoked()  # the worker's on_partitions_revoked

    def assigned(self, generation: int, partitions: list[int]) -> None:
        self.app.consumer_generation_id = generation
        tps = [TP(TOPIC, p) for p in partitions] + [TP(OTHER, 0)]
        self.positions.assigned(tps)  # the worker's on_partitions_assigned

    def rebalance_ends(self) -> None:
        self.sensor.on_rebalance_end(self.app, {})


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents.positions, "backoff", lambda failures: 0.0)


async def within(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, 10)


async def test_each_partition_is_paused_sought_and_resumed_only_when_faust_is_done() -> None:
    """On assignment every partition of the worker's topics is paused first, then sought to
    its committed offset (0 counts), or to its beginning when it has none; it is resumed, and
    its generation's records taken, only once faust's rebalance has ended."""
    client = FakeClient({0: 7, 1: None, 2: 0}, beginnings={1: 3}, assigned={0, 1, 2})
    faust = Faust(client)
    faust.rebalance_begins()
    faust.assigned(1, [0, 1, 2])
    await within(client.sought.wait())
    assert client.calls[0] == ("pause", [0, 1, 2])
    assert client.done("beginnings") == [[1]]
    assert sorted(client.done("seek")) == [(0, 7), (1, 3), (2, 0)]
    assert client.done("resume") == []

    ready = asyncio.ensure_future(faust.positions.ready(1))
    await asyncio.sleep(0)  # the records that come early wait for the opening
    assert not ready.done()
    assert not faust.positions.is_open(1)
    faust.rebalance_ends()
    assert await within(ready) is True
    assert client.done("resume") == [[0, 1, 2]]
    assert faust.positions.taking(1)
    assert not await faust.positions.ready(0)  # an older generation's records: never


async def test_a_rebalance_that_begins_closes_the_generation_at_once() -> None:
    """From the moment the next rebalance begins nothing of the open generation is
    acknowledged or taken; once it is revoked, waiting records are dropped."""
    client = FakeClient({0: 1}, beginnings={}, assigned={0})
    faust = Faust(client)
    faust.rebalance_begins()
    faust.assigned(1, [0])
    faust.rebalance_ends()
    assert await within(faust.positions.ready(1))

    faust.sensor.on_rebalance_start(faust.app)
    assert not faust.positions.is_open(1)  # what finishes now is not acknowledged
    ready = asyncio.ensure_future(faust.positions.ready(1))
    await asyncio.sleep(0)
    assert not ready.done()
    faust.positions.revoked()
    assert await within(ready) is False


async def test_an_opening_overtaken_by_a_rebalance_does_not_open() -> None:
    """A rebalance that begins while the partitions are being resumed wins: the generation
    stays closed."""
    client = FakeClient({0: 1}, beginnings={}, assigned={0})
    faust = Faust(client)
    faust.rebalance_begins()
    faust.assigned(1, [0])
    await within(client.sought.wait())
    faust.thread.gate = asyncio.Event()
    faust.rebalance_ends()
    await asyncio.sleep(0)
    faust.sensor.on_rebalance_start(faust.app)  # the consumer thread, mid-opening
    faust.thread.gate.set()
    await within(client.resumed.wait())  # the opening decided in the same step
    assert not faust.positions.is_open(1)


async def test_broker_errors_are_retried_and_a_lost_assignment_is_given_up(
    no_backoff: None,
) -> None:
    """A lookup that fails is tried again until the partitions are positioned; partitions no
    longer assigned (a newer assignment replaced this one) end the attempt without opening."""
    client = FakeClient({0: 4}, beginnings={}, assigned={0})
    client.failures = [KafkaConnectionError(), KafkaConnectionError()]
    faust = Faust(client)
    faust.rebalance_begins()
    faust.assigned(1, [0])
    faust.rebalance_ends()
    assert await within(faust.positions.ready(1))
    assert client.done("seek") == [(0, 4)]

    lost = FakeClient({5: 4}, beginnings={}, assigned=set())
    faust = Faust(lost)
    faust.rebalance_begins()
    faust.assigned(2, [5])
    faust.rebalance_ends()
    positioned = faust.positions._assignment.positioned  # type: ignore[union-attr]
    assert await within(positioned) is False
    assert lost.calls == []
    assert not faust.positions.is_open(2)


async def test_stopping_takes_nothing_more_but_still_acknowledges() -> None:
    """Once the worker stops, no record is taken, and records waiting for an opening are
    dropped; records finishing in the grace period are still acknowledged."""
    client = FakeClient({0: 1}, beginnings={}, assigned={0})
    faust = Faust(client)
    faust.rebalance_begins()
    faust.assigned(1, [0])
    faust.rebalance_ends()
    assert await within(faust.positions.ready(1))
    faust.positions.stop()
    assert not faust.positions.taking(1)
    assert not await faust.positions.ready(1)
    assert faust.positions.is_open(1)
