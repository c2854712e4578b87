"""The durable step ledger: a compacted Kafka topic, read into memory, written through.

Every completed step is recorded before the run moves on: :meth:`KafkaLedger.put` returns only
once the entry is acknowledged by the broker (acks=all), so it is durable before the input
offset can be committed. A worker reads the whole topic at start, then tails it, so entries
written by other workers (before a rebalance moved a partition here) are seen too;
:meth:`sync` waits until the tail has caught up with the topic's end, and the engine calls it
before each batch.

Key: ``<run key>/<step id>`` (UTF-8). Value: the :class:`~pipeline.ledger.StepRecord` as JSON,
or null (a tombstone) to forget it. The topic is compacted and also deletes entries older than
its retention (30 days by default, like the dead letters, so a redrive still finds them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.ledger import StepRecord

log = logging.getLogger(__name__)

SCHEMA = "actionflows.ledger-entry/1"


def encode(record: StepRecord) -> bytes:
    return orjson.dumps({
        "schema": SCHEMA, "status": record.status, "outputs": record.outputs,
        "salesforce_id": record.salesforce_id, "attempts": record.attempts,
    }, option=orjson.OPT_NON_STR_KEYS)  # fmt: skip


def decode(value: bytes) -> StepRecord:
    data: dict[str, Any] = orjson.loads(value)
    return StepRecord(
        status=data["status"], outputs=data.get("outputs") or {},
        salesforce_id=data.get("salesforce_id"), attempts=data.get("attempts") or 0,
    )  # fmt: skip


class KafkaLedger:
    """The :class:`~pipeline.ledger.Ledger` port over a compacted topic."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap_servers
        self._records: dict[str, StepRecord] = {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=1
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=100,
        )  # fmt: skip
        # Asks for end offsets only: the tail's long-polling fetch would delay its requests.
        self._offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
        self._tail: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        # Offsets this instance wrote that the tail has not read back yet: already in memory,
        # so sync() need not wait for them.
        self._own: dict[TopicPartition, set[int]] = {}
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        """Connect, read the topic to its end, and keep tailing it."""
        await self._producer.start()
        await self._consumer.start()
        await self._offsets.start()
        partitions = await self._partitions()
        if not partitions:
            await self._offsets.stop()
            await self._consumer.stop()
            await self._producer.stop()
            raise RuntimeError(f"ledger topic {self.topic!r} does not exist")
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)
        self._tail = asyncio.create_task(self._follow(), name="ledger-tail")
        await self.sync()
        log.info("ledger %s loaded: %d entries", self.topic, len(self._records))

    async def _partitions(self) -> set[int]:
        """The topic's partitions (the producer waits for the metadata of a new topic)."""
        try:
            return set(await self._producer.partitions_for(self.topic))
        except KafkaError:
            return set()

    async def stop(self) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        await self._offsets.stop()
        await self._consumer.stop()
        await self._producer.stop()

    async def get(self, run_key: str, step_id: str) -> StepRecord | None:
        return self._records.get(f"{run_key}/{step_id}")

    async def put(self, run_key: str, step_id: str, record: StepRecord) -> None:
        key = f"{run_key}/{step_id}"
        self._records[key] = record
        sent = await self._producer.send_and_wait(self.topic, encode(record), key=key.encode())
        self._own.setdefault(TopicPartition(self.topic, sent.partition), set()).add(sent.offset)

    async def sync(self) -> None:
        """Return once every entry written before this call has been read into memory."""
        ends = await self._offsets.end_offsets(list(self._consumer.assignment()))

        def caught_up(tp: TopicPartition, end: int) -> bool:
            own = self._own.get(tp, set())
            return all(offset in own for offset in range(self._positions.get(tp, 0), end))

        async with self._progress:
            await self._progress.wait_for(lambda: all(caught_up(*item) for item in ends.items()))

    def __len__(self) -> int:
        return len(self._records)

    async def _follow(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if record.value is None:
                        self._records.pop(key, None)
                    else:
                        self._records[key] = decode(record.value)
            async with self._progress:
                for partition in self._consumer.assignment():
                    position = await self._consumer.position(partition)
                    self._positions[partition] = position
                    own = self._own.get(partition)
                    if own:
                        own.difference_update([o for o in own if o < position])
                self._progress.notify_all()
