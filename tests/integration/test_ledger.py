"""The Kafka ledger survives its process: what one instance recorded, the next one knows."""

from __future__ import annotations

from agents.ledger import KafkaLedger
from pipeline.ledger import StepRecord
from tests.kafkatools import create_topics


async def test_a_new_ledger_instance_reads_what_an_earlier_one_recorded(
    kafka: str, unique: str
) -> None:
    """put() is durable: a ledger started afterwards returns the same record."""
    topic = f"ledger-{unique}"
    await create_topics(kafka, [topic], partitions=3)
    record = StepRecord(
        status="succeeded",
        outputs={"id": "00Q000000000001AAA"},
        salesforce_id="00Q000000000001AAA",
        attempts=2,
    )
    first = KafkaLedger(kafka, topic)
    await first.start()
    try:
        await first.put("run1-abc", "create_lead", record)
    finally:
        await first.stop()
    second = KafkaLedger(kafka, topic)
    await second.start()
    try:
        assert await second.get("run1-abc", "create_lead") == record
        assert await second.get("run1-abc", "other") is None
    finally:
        await second.stop()


async def test_sync_sees_what_another_worker_just_recorded(kafka: str, unique: str) -> None:
    """Two workers share the topic: after sync(), one sees the other's latest record."""
    topic = f"ledger-{unique}"
    await create_topics(kafka, [topic], partitions=2)
    writer, reader = KafkaLedger(kafka, topic), KafkaLedger(kafka, topic)
    await writer.start()
    await reader.start()
    try:
        await writer.put("run1-x", "find", StepRecord(status="succeeded"))
        await reader.sync()
        assert await reader.get("run1-x", "find") == StepRecord(status="succeeded")
    finally:
        await writer.stop()
        await reader.stop()
