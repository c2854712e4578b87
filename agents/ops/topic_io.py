"""Reading a slice of a topic, and publishing records, for the operator tools.

:class:`SliceReader` uses a plain ``AIOKafkaConsumer(group_id=None)``: partitions are assigned
and seeked by hand, nothing is ever committed, and no consumer group is joined, so the worker's
group and offsets are untouched. The slice's end offsets are captured once at start, so reading
stops there even while the topic grows (a replay into the topic it reads terminates).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from agents.ops.slices import OffsetBound, SliceError, SliceSpec, resolve_ranges

Record: TypeAlias = ConsumerRecord  # of bytes keys and values


async def topic_partitions(bootstrap: str, topic: str) -> list[int] | None:
    """The topic's partition numbers, or None when it does not exist.

    Asks for the metadata of every topic: asking for one by name lets a broker with
    ``auto.create.topics.enable`` create it, which a read-only tool must never do.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described: list[dict[str, Any]] = await admin.describe_topics()
    finally:
        await admin.close()
    for item in described:
        if item["topic"] == topic:
            return sorted(p["partition"] for p in item["partitions"])
    return None


async def ensure_compacted_topic(bootstrap: str, topic: str, replication_factor: int) -> None:
    """Create a one-partition compacted topic unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        new = NewTopic(
            topic,
            num_partitions=1,
            replication_factor=replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # an earlier run made it
            await admin.create_topics([new])
    finally:
        await admin.close()


@dataclass
class SliceReader:
    """``async with SliceReader(...) as reader: async for record in reader.records(): …``"""

    bootstrap: str
    topic: str
    spec: SliceSpec = field(default_factory=SliceSpec)
    idle_timeout_s: float = 30.0  # no progress for this long (broker gone): give up, loudly
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)

    @property
    def total(self) -> int:
        """Offsets in the slice: an upper bound of its records (compaction leaves gaps)."""
        return sum(end - start for start, end in self.ranges.values())

    async def __aenter__(self) -> SliceReader:
        available = await topic_partitions(self.bootstrap, self.topic)
        if available is None:
            raise SliceError(f"topic {self.topic!r} does not exist")
        partitions = self.spec.selected(available)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",  # never replay an aborted transaction's records
        )
        await consumer.start()
        self._consumer = consumer
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            first = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
            end = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
            since = await self._times(tps, self.spec.since_ms)
            until = await self._times(tps, self.spec.until_ms)
            self.ranges = resolve_ranges(self.spec, partitions, first, end, since, until)
            for tp in tps:
                consumer.seek(tp, self.ranges[tp.partition][0])
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def _times(self, tps: list[TopicPartition], at_ms: int | None) -> dict[int, int | None]:
        if at_ms is None:
            return {}
        assert self._consumer is not None
        found = await self._consumer.offsets_for_times(dict.fromkeys(tps, at_ms))
        return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}

    async def records(self) -> AsyncIterator[Record]:
        """Every record of the slice, partition by partition in offset order."""
        consumer = self._consumer
        assert consumer is not None, "use SliceReader as an async context manager"
        pending = {
            TopicPartition(self.topic, p): end
            for p, (start, end) in self.ranges.items()
            if start < end
        }
        consumer.pause(*(tp for tp in consumer.assignment() if tp not in pending))
        last_progress = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for tp, items in batch.items():
                for record in items:
                    if record.offset < pending.get(tp, -1):
                        yield record
            for tp, end in list(pending.items()):
                if await consumer.position(tp) >= end:
                    del pending[tp]
                    consumer.pause(tp)  # fetch nothing past the slice
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self.idle_timeout_s:
                left = ", ".join(
                    [f"{tp.partition}@{await consumer.position(tp)}" for tp in pending]
                )
                raise TimeoutError(
                    f"no records from {self.topic!r} for {self.idle_timeout_s:.0f}s "
                    f"before the slice end (partition@position: {left})"
                )

    async def __aexit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def read_record(bootstrap: str, topic: str, partition: int, offset: int) -> Record | None:
    """The one record at ``partition:offset``, or None when the log does not hold it."""
    here = OffsetBound(per_partition={partition: offset})
    async with SliceReader(
        bootstrap, topic, SliceSpec(from_offsets=here, to_offsets=here)
    ) as reader:
        async for record in reader.records():
            return record if record.offset == offset else None
    return None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to publish; ``partition`` None lets the key choose it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int | None = None


class Sender:
    """An idempotent ``acks=all`` producer; :meth:`flush` returns once all is acknowledged."""

    def __init__(self, bootstrap: str, *, window: int = 1000) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        self._window = window
        self._pending: list[Any] = []

    async def __aenter__(self) -> Sender:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                await self.flush()
        finally:
            await self._producer.stop()

    async def send(self, record: Outgoing) -> None:
        """Queue one record; sends from one Sender keep their order within a partition."""
        future = await self._producer.send(
            record.topic,
            record.value,
            key=record.key,
            partition=record.partition,
            headers=record.headers,
        )
        self._pending.append(future)
        if len(self._pending) >= self._window:
            await self.flush()

    async def send_all(self, records: Sequence[Outgoing]) -> None:
        for record in records:
            await self.send(record)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            await future  # raises the first failure: the caller reports it, nothing is hidden
