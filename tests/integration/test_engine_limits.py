"""What a producer can send, on the real broker: oversized, deeply nested and mixed inputs each
end in a published outcome, and the partition's committed offset moves past them.

Salesforce is the dict-backed fake; the flow copies the ticket's subject twice into the lead's
description, so a 1,000,000-byte event makes a step output of about 2 MB, over every default
Kafka limit.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.outcomes import Outbound
from agents.publisher import FaustPublisher
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from tests.integration.test_engine_pipeline import UNUSED_CONNECTION
from tests.kafkatools import committed, read, wait_for
from tests.pipeline.catalogue_fakes import FakeSalesforce
from topics import bounded
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings

COPY_FLOW = """\
name: copy-subject
version: 1
trigger:
  event_types: [ticket.created]
steps:
  - id: create_lead
    action: salesforce.create_record
    object: lead
    inputs:
      name: "{{ event.requester.name }}"
      description: "{{ event.ticket.subject }} {{ event.ticket.subject }}"
"""


def envelope(event_id: str, ticket: str, *, subject: str = "Hi", attributes: Any = None) -> bytes:
    doc: dict[str, Any] = {
        "id": event_id,
        "type": "ticket.created",
        "ticket": {"id": ticket, "subject": subject},
        "requester": {"name": "Ada Lovelace", "email": f"{ticket.lower()}@x.io"},
    }
    if attributes is not None:
        doc["attributes"] = attributes
    return orjson.dumps(doc)


def sized(event_id: str, ticket: str, size: int) -> bytes:
    """An event of exactly ``size`` bytes (its subject pads it)."""
    bare = envelope(event_id, ticket, subject="")
    return envelope(event_id, ticket, subject="x" * (size - len(bare)))


def deep(event_id: str, ticket: str, depth: int) -> bytes:
    """An event whose ``attributes`` nest ``depth`` objects (written by hand: orjson will not
    serialise more than 254 levels)."""
    nested = b'{"n":' * (depth - 1) + b'{"leaf":true}' + b"}" * (depth - 1)
    return envelope(event_id, ticket, attributes={}).replace(
        b'"attributes":{}', b'"attributes":' + nested
    )


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "copy-subject.yaml").write_text(COPY_FLOW)
    return tmp_path


def config(kafka: str, unique: str, flows: Path, partitions: int = 1) -> ServiceConfig:
    return ServiceConfig(
        worker=WorkerSettings(
            bootstrap_servers=kafka,
            app_id=f"limits-{unique}",
            flows_dir=flows,
            topic_partitions=partitions,
        ),
        connection=UNUSED_CONNECTION,
        topics=CatalogueSettings(prefix=f"lim-{unique}", partitions=partitions),
    )


@pytest.fixture
async def service(kafka: str, unique: str, flows: Path) -> AsyncIterator[Service]:
    async with Service(config(kafka, unique, flows), gateway=FakeSalesforce()) as running:
        yield running


async def send(
    kafka: str,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    max_request_size: int = 1_048_576,
) -> list[tuple[int, int]]:
    """Produce, acks=all; each record's (partition, offset)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", max_request_size=max_request_size
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for key, value in records]
        return [(m.partition, m.offset) for m in await asyncio.gather(*sent)]
    finally:
        await producer.stop()


async def wait_committed_past(
    kafka: str, group: str, topic: str, positions: list[tuple[int, int]]
) -> None:
    async def past() -> bool:
        offsets = await committed(kafka, group, topic)
        return all(offsets.get(partition, 0) > offset for partition, offset in positions)

    await wait_for(past, timeout_s=90, what=f"the commit of {topic} to pass {positions}")


async def test_a_million_byte_event_publishes_a_bounded_two_megabyte_step_output(
    kafka: str, service: Service
) -> None:
    """The 1,000,000-byte event is accepted; its ~2 MB step output is published in bounded
    form (metadata kept, the description marked with its size), its run result too, and the
    offset is committed past it."""
    prefix = service.catalogue.prefix
    event = sized("big", "T1", 1_000_000)
    positions = await send(kafka, f"{prefix}.tickets", [(b"T1", event)])
    (step,) = await read(kafka, f"{prefix}.step-outputs", 1, timeout_s=90)
    (result,) = await read(kafka, f"{prefix}.run-results", 1, timeout_s=90)
    output = orjson.loads(step.value)
    assert output["truncated"] is True
    assert (output["event_id"], output["step"], output["status"]) == (
        "big",
        "create_lead",
        "succeeded",
    )
    assert output["inputs"]["description"]["truncated"] is True
    assert output["inputs"]["description"]["original_bytes"] > 1_900_000
    assert orjson.loads(result.value)["status"] == "succeeded"
    await wait_committed_past(kafka, service.app.conf.id, f"{prefix}.tickets", positions)


async def test_a_two_megabyte_event_on_a_topic_that_allows_it_gets_a_bounded_dead_letter(
    kafka: str, unique: str, flows: Path
) -> None:
    """A 2 MB event on an input topic whose max.message.bytes allows it is too large to decode;
    its dead letter cannot carry it whole, so it carries the first bytes that fit, the size
    and sha256 of the whole, and where the original is; the offset is committed past it."""
    cfg = config(kafka, unique, flows)
    tickets = f"{cfg.topics.prefix}.tickets"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    await admin.create_topics(
        [NewTopic(tickets, 1, 1, topic_configs={"max.message.bytes": "3000000"})]
    )
    await admin.close()
    event = sized("huge", "T2", 2_000_000)
    async with Service(cfg, gateway=FakeSalesforce()) as service:
        positions = await send(kafka, tickets, [(b"T2", event)], max_request_size=3_000_000)
        (letter,) = await read(kafka, f"{cfg.topics.prefix}.dead-letters", 1, timeout_s=90)
        await wait_committed_past(kafka, service.app.conf.id, tickets, positions)
    found = dict(letter.headers)
    assert found[bounded.TRUNCATED] == b"true"
    assert found[bounded.ORIGINAL_BYTES] == b"2000000"
    assert found[bounded.ORIGINAL_SHA256] == hashlib.sha256(event).hexdigest().encode()
    assert event.startswith(letter.value)
    assert len(letter.value) > 1_000_000
    context = h.parse_dead_letter_headers(letter.headers)
    assert (context.reason, context.topic, context.partition, context.offset) == (
        "decode.payload_too_large",
        tickets,
        *positions[0],
    )


async def test_a_thousand_deep_event_ends_in_a_published_outcome(
    kafka: str, service: Service
) -> None:
    """An event nested 1,000 levels deep gets a published outcome (a dead letter, whichever
    reason), and the offset moves past it."""
    prefix = service.catalogue.prefix
    positions = await send(kafka, f"{prefix}.tickets", [(b"T3", deep("deep", "T3", 1_000))])
    (letter,) = await read(kafka, f"{prefix}.dead-letters", 1, timeout_s=90)
    assert h.parse_dead_letter_headers(letter.headers).offset == positions[0][1]
    await wait_committed_past(kafka, service.app.conf.id, f"{prefix}.tickets", positions)


async def test_the_reproduction_from_issue_9_loses_nothing(
    kafka: str, unique: str, flows: Path
) -> None:
    """On a fresh topic, a 1,000,000-byte event, a 1,000-deep event and five plain events,
    produced together: every plain event gets its run result, every event an outcome, and the
    group's commits reach the end of every partition."""
    cfg = config(kafka, unique, flows, partitions=12)
    tickets = f"{cfg.topics.prefix}.tickets"
    records = [(b"B", sized("big", "B", 1_000_000)), (b"D", deep("deep", "D", 1_000))]
    records += [(f"P{i}".encode(), envelope(f"plain{i}", f"P{i}")) for i in range(5)]
    async with Service(cfg, gateway=FakeSalesforce()) as service:
        positions = await send(kafka, tickets, records)
        results = await read(kafka, f"{cfg.topics.prefix}.run-results", 6, timeout_s=90)
        letters = await read(kafka, f"{cfg.topics.prefix}.dead-letters", 1, timeout_s=90)
        await wait_committed_past(kafka, service.app.conf.id, tickets, positions)
    statuses = {orjson.loads(r.value)["event_id"]: orjson.loads(r.value)["status"] for r in results}
    assert {f"plain{i}" for i in range(5)} | {"big"} == set(statuses)
    assert set(statuses.values()) == {"succeeded"}
    assert h.parse_dead_letter_headers(letters[0].headers).event_id in (None, "deep")


class ProducerApp:
    """Just what FaustPublisher uses of a faust app: ``producer.send`` with faust's signature,
    here over a plain aiokafka producer. Notes every record whose send failed."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = self
        self._producer = producer
        self.failed: list[bytes] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: None, timestamp: None,
        headers: list[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:  # fmt: skip
        future = await self._producer.send(topic, value, key=key, headers=headers)
        future.add_done_callback(lambda f: f.exception() and self.failed.append(value))
        return future


async def test_a_record_the_broker_refuses_is_bounded_and_its_batch_still_completes(
    kafka: str, unique: str
) -> None:
    """A step output too large for its topic's max.message.bytes (10,000 here, unknown to the
    publisher) shares a batch with two small ones: the broker refuses the batch; the small
    records then go through unchanged and the large one in bounded form."""
    catalogue = Catalogue.build(CatalogueSettings(prefix=f"ref-{unique}"))
    topic = f"ref-{unique}.step-outputs"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "10000"})])
    await admin.close()

    def output(step: str, size: int) -> Outbound:
        doc = {"schema": "actionflows.step-output/1", "run_id": "r1", "step": step,
               "status": "succeeded", "outputs": {"Description": "d" * size}}  # fmt: skip
        return Outbound(topic, b"T1", orjson.dumps(doc), [])

    records = [output("small_1", 100), output("large", 12_000), output("small_2", 100)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=200)
    await producer.start()
    app = ProducerApp(producer)
    try:
        publisher = FaustPublisher(
            app,
            asyncio.Event(),
            catalogue,
            max_request_size=1_048_576,  # type: ignore[arg-type]
        )
        await asyncio.wait_for(publisher.publish(records), 60)
    finally:
        await producer.stop()
    assert set(app.failed) == {r.value for r in records}, "the broker refused the whole batch"
    published = {orjson.loads(r.value)["step"]: r for r in await read(kafka, topic, 3)}
    assert published["small_1"].value == records[0].value
    assert published["small_2"].value == records[2].value
    large = orjson.loads(published["large"].value)
    assert large["truncated"] is True
    assert large["outputs"]["Description"]["truncated"] is True
    assert publisher.bounded == 1
