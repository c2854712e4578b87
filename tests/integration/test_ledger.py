"""The Kafka ledger survives its process: what one instance recorded, the next one knows."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.ledger import KafkaLedger, LedgerError
from pipeline.ledger import StepRecord
from tests.kafkatools import create_topics, wait_for


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


async def test_put_changes_memory_only_once_the_broker_acknowledged_it(
    kafka: str, unique: str
) -> None:
    """While a put is on its way to the broker, get() does not see it; once put() returns,
    it does."""
    topic = f"ledger-{unique}"
    await create_topics(kafka, [topic])
    ledger = KafkaLedger(kafka, topic)
    await ledger.start()
    try:
        putting = asyncio.create_task(ledger.put("run1-a", "s", StepRecord(status="succeeded")))
        await asyncio.sleep(0)  # the put is queued; no broker can have answered yet
        assert await ledger.get("run1-a", "s") is None
        await putting
        assert await ledger.get("run1-a", "s") == StepRecord(status="succeeded")
    finally:
        await ledger.stop()


async def test_concurrent_puts_go_out_together(kafka: str, unique: str) -> None:
    """A hundred runs recording a step at once make one produce, not a hundred round trips."""
    topic = f"ledger-{unique}"
    await create_topics(kafka, [topic], partitions=3)
    ledger = KafkaLedger(kafka, topic)
    await ledger.start()
    rounds: list[int] = []
    send = ledger._send

    async def counting(puts):  # type: ignore[no-untyped-def]
        rounds.append(len(puts))
        return await send(puts)

    ledger._send = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(
            *(ledger.put(f"run1-{i}", "s", StepRecord(status="succeeded")) for i in range(100))
        )
        assert rounds == [100]
        assert len(ledger) == 100
    finally:
        await ledger.stop()


async def test_a_failing_tail_is_restarted_and_reported_and_sync_times_out_meanwhile(
    kafka: str, unique: str
) -> None:
    """The tail's reads fail: status() says it is not alive and why, and sync() gives up after
    its timeout with a LedgerError instead of waiting forever. Once reads work again the tail
    restarts by itself and sync() sees what another worker wrote meanwhile."""
    topic = f"ledger-{unique}"
    await create_topics(kafka, [topic])
    writer, reader = KafkaLedger(kafka, topic), KafkaLedger(kafka, topic, sync_timeout_s=1.0)
    await writer.start()
    await reader.start()
    getmany = reader._consumer.getmany
    failures = 0

    async def broken(*args: object, **kwargs: object) -> object:
        nonlocal failures
        failures += 1
        raise KafkaConnectionError("injected: the broker went away")

    reader._consumer.getmany = broken  # type: ignore[method-assign]
    try:
        await wait_for(lambda: failures >= 2, what="the injected fault to fire twice")
        assert not reader.status().alive
        assert "injected" in (reader.status().last_error or "")
        await writer.put("run1-x", "find", StepRecord(status="succeeded"))
        with pytest.raises(LedgerError):
            await reader.sync()
        assert not reader.status().synced
        reader._consumer.getmany = getmany  # type: ignore[method-assign]
        await wait_for(lambda: reader.status().alive, what="the tail to restart")
        await reader.sync()
        assert await reader.get("run1-x", "find") == StepRecord(status="succeeded")
        assert reader.status().synced
        assert reader.status().entries == 1
    finally:
        await writer.stop()
        await reader.stop()
