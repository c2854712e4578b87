"""The raw ceiling: a plain aiokafka consume-and-produce loop on the same broker.

Whatever the engine reaches is compared with this: the speed of moving records from one topic to
another with no decoding, no flows and no Salesforce, at acks=all, one record out per record in.
It runs in the harness's own process, with nothing else running.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka import create_topics


@dataclass(frozen=True, slots=True)
class CeilingResult:
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


async def measure(bootstrap: str, records: int = 50_000, payload_bytes: int = 600) -> CeilingResult:
    suffix = uuid.uuid4().hex[:8]
    source, sink = f"bench-raw-in-{suffix}", f"bench-raw-out-{suffix}"
    await create_topics(bootstrap, [source, sink], partitions=1)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    payload = b"x" * payload_bytes
    for i in range(records):
        await producer.send(source, payload, key=b"ticket-%d" % (i % 1000))
    await producer.flush()

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{suffix}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    moved = 0
    started: float | None = None  # from the first record: joining the group is not moving
    try:
        while moved < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if batch and started is None:
                started = time.perf_counter()
            for partition_records in batch.values():
                for record in partition_records:
                    await producer.send(sink, record.value, key=record.key)
                moved += len(partition_records)
            await producer.flush()
            await consumer.commit()
    finally:
        seconds = time.perf_counter() - (started or time.perf_counter())
        await consumer.stop()
        await producer.stop()
    return CeilingResult(records=moved, seconds=seconds)
