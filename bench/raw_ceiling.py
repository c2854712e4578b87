"""The raw ceiling: a plain aiokafka consume-and-produce loop on the same broker.

Whatever the engine reaches is compared with this: the speed of moving records from one topic to
another with no decoding, no flows and no Salesforce, using the same producer settings (acks=all).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


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
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 1, 1) for t in (source, sink)])
    await admin.close()

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
    started = time.perf_counter()
    try:
        while moved < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for partition_records in batch.values():
                for record in partition_records:
                    await producer.send(sink, record.value, key=record.key)
                moved += len(partition_records)
            await producer.flush()
            await consumer.commit()
    finally:
        seconds = time.perf_counter() - started
        await consumer.stop()
        await producer.stop()
    return CeilingResult(records=moved, seconds=seconds)


if __name__ == "__main__":
    import sys

    result = asyncio.run(measure(sys.argv[1]))
    print(f"raw aiokafka consume+produce: {result.per_second:,.0f} records/s")
