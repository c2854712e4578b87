"""Kafka for the benchmark harness: topics, the backlog and the paced feed, progress, read-back.

The harness never consumes the worker's outputs while it runs (that would take CPU from the
worker on a 2-core machine): it polls end offsets, and reads the records back once a run is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from agents.ops.slices import read_slice, topic_partitions

PARTITIONS = 6
TICKETS = 10_000  # events spread over this many tickets: per-ticket order never binds


def event(i: int, tag: str) -> tuple[bytes, bytes]:
    """The ``i``-th benchmark event (key, value): a new requester on one of TICKETS tickets."""
    ticket = f"B{i % TICKETS}"
    value = orjson.dumps(
        {
            "id": f"bench-{tag}-{i}",
            "type": "ticket.created",
            "ticket": {"id": ticket, "subject": "Benchmark"},
            "requester": {"name": f"Bench Person{i}", "email": f"bench{i}-{tag}@example.com"},
        }
    )
    return ticket.encode(), value


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    *,
    rate: float | None = None,
) -> None:
    """Send ``records`` at acks=all; ``rate`` (records/s) paces them in 10 ms slices."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
    )
    await producer.start()
    try:
        started = time.monotonic()
        for i, (key, value) in enumerate(records):
            if rate is not None and i % max(1, int(rate / 100)) == 0:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the feed
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


class Progress:
    """Counts the records on some topics by their end offsets, without reading them."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> Progress:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def count(self) -> int:
        if not self._partitions:
            found = [(t, await topic_partitions(self._bootstrap, t)) for t in self._topics]
            if not all(partitions for _, partitions in found):
                return 0  # the worker has not created them yet
            self._partitions = [TopicPartition(t, p) for t, ps in found for p in ps or ()]
        ends = await self._consumer.end_offsets(self._partitions)
        return sum(ends.values())


@dataclass(frozen=True, slots=True)
class Mark:
    at: float  # monotonic seconds
    count: int


async def wait_for_count(
    progress: Progress, target: int, *, timeout_s: float, every_s: float = 0.2
) -> list[Mark]:
    """Poll until ``target`` records are there; the marks chart the progress."""
    marks: list[Mark] = []
    deadline = time.monotonic() + timeout_s
    while True:
        count = await progress.count()
        marks.append(Mark(time.monotonic(), count))
        if count >= target:
            return marks
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count}/{target} records after {timeout_s:.0f}s")
        await asyncio.sleep(every_s)  # polling period, not synchronisation


async def group_members(bootstrap: str, group: str) -> int:
    """How many members a consumer group has while it is stable (0 otherwise, or unknown)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError:
        return 0  # no coordinator yet: the group is still forming
    finally:
        await admin.close()
    (described,) = response.to_object()["groups"]
    return len(described["members"]) if described["state"] == "Stable" else 0


async def wait_for_group(
    bootstrap: str, group: str, members: int, *, timeout_s: float, every_s: float = 0.2
) -> None:
    """Poll until ``group`` is stable with ``members`` members."""
    deadline = time.monotonic() + timeout_s
    while (found := await group_members(bootstrap, group)) != members:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"group {group}: {found}/{members} stable members after {timeout_s:.0f}s"
            )
        await asyncio.sleep(every_s)  # polling period, not synchronisation


async def timestamps_by_event(bootstrap: str, topic: str) -> dict[str, int]:
    """Each record's event id (its ``id`` or ``event_id`` field) → its timestamp, in ms."""
    return {key: stamp for key, (stamp, _) in (await records_by_event(bootstrap, topic)).items()}


async def records_by_event(bootstrap: str, topic: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each record's event id (its ``id`` or ``event_id`` field) → its timestamp in ms, and its
    value."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for record in await read_slice(bootstrap, topic):
        data = orjson.loads(record.value)
        found[data.get("event_id") or data["id"]] = record.timestamp, data
    return found


async def edge_timestamps(bootstrap: str, topic: str) -> tuple[int, int]:
    """The earliest first-record and the latest last-record timestamp over the partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic) or ()
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        firsts: list[int] = []
        lasts: list[int] = []
        for partition in partitions:
            if not ends[partition]:
                continue
            for offset, found in ((0, firsts), (ends[partition] - 1, lasts)):
                consumer.seek(partition, offset)
                record = await consumer.getone(partition)
                found.append(record.timestamp)
        return min(firsts), max(lasts)
    finally:
        await consumer.stop()


async def topic_sizes(bootstrap: str, topics: Sequence[str]) -> int:
    """Records on ``topics`` (their end offsets summed)."""
    async with Progress(bootstrap, topics) as progress:
        return await progress.count()
