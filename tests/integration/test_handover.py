"""A partition handed over in a rebalance is read from where its group left it, whatever faust
dropped on the way.

The race the worker guards against: a fetch that faust's consumer thread has in flight when a
rebalance starts waits for the new assignment, then drains records of it (from the committed
offset, or the beginning of a partition never committed) while faust's flow is still stopped.
faust drops that batch and seeks back to the committed offsets, but aiokafka's
``seek_to_committed`` skips a partition with no committed offset: its fetch position stays past
the dropped records, and they are never delivered again. The fault injection makes the race
certain instead of occasional: the idle fetch waits long enough to span the rebalance, and the
new assignment is handed to faust only once that fetch has drained it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faust.types import TP

import agents.positions
from agents.service import Service
from tests.integration.test_engine_pipeline import (
    HELD,
    HoldingSalesforce,
    config,
    event,
    flows,  # noqa: F401 - a fixture
    results,
    running,  # noqa: F401 - a fixture
    start,
)
from tests.kafkatools import committed, group_members, wait_for


class CrossingFetch:
    """On one worker: its idle fetch spans a rebalance and drains the new assignment before
    faust hears of it (what a slow or busy machine does now and then)."""

    def __init__(self, service: Service, topic: str) -> None:
        thread: Any = service.app.consumer._thread  # type: ignore[attr-defined]
        self.topic = topic
        self.armed = False
        self.drained: list[tuple[int, int, bool]] = []  # partition, offset, faust's flow active
        self._drained = threading.Event()
        fetch_records = thread._fetch_records
        listener = thread._rebalance_listener
        assigned = listener.on_partitions_assigned

        async def long_fetch(consumer: Any, partitions: Any, **kw: Any) -> Any:
            records = await fetch_records(consumer, partitions, **(kw | {"timeout": 60.0}))
            if self.armed:
                for tp, batch in records.items():
                    if tp.topic == topic:
                        flowing = bool(thread.consumer.flow_active)
                        self.drained.extend((tp.partition, r.offset, flowing) for r in batch)
                        self._drained.set()
            return records

        async def after_the_drain(partitions: Any) -> None:
            if self.armed:
                await asyncio.get_running_loop().run_in_executor(None, self._drained.wait, 30)
            await assigned(partitions)

        thread._fetch_records = long_fetch
        listener.on_partitions_assigned = after_the_drain

    def dropped(self, partition: int) -> list[int]:
        """Offsets of ``partition`` drained while faust's flow was stopped."""
        return [o for p, o, flowing in self.drained if p == partition and not flowing]


async def produce_to(
    kafka: str, topic: str, partition: int, records: list[tuple[bytes, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


@pytest.mark.parametrize("positioning", [True, False], ids=["positioned", "switched-off"])
async def test_a_partition_never_committed_is_read_from_its_beginning_after_a_handover(
    kafka: str,
    unique: str,
    flows: Path,  # noqa: F811 - the fixture
    running: list[Service],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    positioning: bool,
) -> None:
    """The second of two workers takes four events of one partition and finishes all but the
    first (held), so the partition has no committed offset; it stops. The first worker gets the
    partition while a fetch of its drains it, and faust drops that batch. The first worker still
    runs all four events, and a fifth produced after; the commit reaches the end only then.

    Switched off (the worker leaves the partitions where faust puts them), the first worker
    never sees the dropped events, runs the fifth, and the commit passes the held event, which
    never ran: an event lost without an error."""
    if not positioning:
        monkeypatch.setattr(agents.positions, "_pause_and_seek", _where_faust_left_them)
    gateway = HoldingSalesforce()
    cfg = config(kafka, unique, flows, partitions=2)
    group, tickets = cfg.worker.app_id, f"{cfg.topics.prefix}.tickets"
    first = await start(running, cfg, gateway)
    crossing = CrossingFetch(first, tickets)
    second = await start(running, cfg, gateway)
    await wait_for(lambda: _stable(kafka, group, [first, second], tickets), timeout_s=120,
                   what="two workers with an input partition each")  # fmt: skip
    (tp,) = [tp for tp in second.app.consumer.assignment() if tp.topic == tickets]
    held = [event(0, "A", HELD)] + [event(i) for i in (1, 2, 3)]
    await produce_to(kafka, tickets, tp.partition, held)
    await wait_for(lambda: _has(kafka, cfg, {"e1", "e2", "e3"}), timeout_s=60, what="e1-e3 done")
    assert gateway.entered == [HELD]
    assert tp.partition not in await committed(kafka, group, tickets)

    crossing.armed = True
    await second.stop(grace_s=0)
    running.remove(second)
    gateway.release.set()
    await wait_for(lambda: (bool(crossing.dropped(tp.partition))), timeout_s=60,
                   what="the crossing fetch to drain the handed-over partition")  # fmt: skip
    assert crossing.dropped(tp.partition)[0] == 0  # the injected fault fired: e0 was dropped
    await wait_for(lambda: _owns(first, tp), timeout_s=60, what="the first worker to own it")

    await produce_to(kafka, tickets, tp.partition, [event(4)])
    await wait_for(lambda: _committed(kafka, group, tickets, tp.partition, 5), timeout_s=90,
                   what="the commit at the end of the partition")  # fmt: skip
    done = await results(kafka, cfg)
    assert done.get("e4") == "succeeded"
    if positioning:
        assert done.get("e0") == "succeeded", f"e0 was committed past but never ran: {done}"
    else:
        assert "e0" not in done  # committed past, never run


async def _where_faust_left_them(consumer: Any, partitions: list[Any]) -> dict[Any, int]:
    return {}


async def _stable(kafka: str, group: str, services: list[Service], topic: str) -> bool:
    if await group_members(kafka, group) != len(services):
        return False
    return all(any(tp.topic == topic for tp in s.app.consumer.assignment()) for s in services)


async def _owns(service: Service, tp: TP) -> bool:
    return tp in service.app.consumer.assignment()


async def _has(kafka: str, cfg: Any, events: set[str]) -> bool:
    return events <= set(await results(kafka, cfg))


async def _committed(kafka: str, group: str, topic: str, partition: int, offset: int) -> bool:
    return (await committed(kafka, group, topic)).get(partition, -1) >= offset
