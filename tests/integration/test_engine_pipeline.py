"""The continuous pipeline on the real broker: slow events, gaps, crashes, rebalances, stop.

Salesforce is a dict-backed fake that can hold the calls for chosen emails until the test
releases them (and notes when a held call is cancelled), so each test decides exactly which
event is unfinished while the others complete. Committed offsets are read from the broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import faust
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from faust.types import TP
from pydantic import SecretStr

from agents.engine import EngineSettings
from agents.ops.slices import read_slice
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from salesforce.settings import AuthMethod, ConnectionSettings
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import committed, create_topics, produce, read, wait_for
from tests.pipeline.catalogue_fakes import FakeSalesforce
from topics import headers as h
from topics.catalogue import CatalogueSettings

HELD = "held@x.io"
UNUSED_CONNECTION = ConnectionSettings(
    name="unused",
    auth=AuthMethod.CLIENT_CREDENTIALS,
    client_id="unused",
    client_secret=SecretStr("unused"),
)


@dataclass
class HoldingSalesforce(FakeSalesforce):
    """The fake org; a query naming a ``held`` email waits for ``release``."""

    held: frozenset[str] = frozenset({HELD})
    release: asyncio.Event = field(default_factory=asyncio.Event)
    entered: list[str] = field(default_factory=list)
    cancelled: int = 0

    async def query(self, soql: str) -> list[dict[str, object]]:
        for email in self.held:
            if email in soql:
                self.entered.append(email)
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
        return await super().query(soql)


# The find's own timeout is far longer than any wait here: a held call that ends was cancelled
# by the worker, not timed out by the step.
PATIENT_FLOW = CREATE_LEAD_FLOW.replace(
    '    inputs: {email: "{{ event.requester.email }}"}\n',
    '    inputs: {email: "{{ event.requester.email }}"}\n    policy: {timeout_s: 600}\n',
    1,
)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    assert "timeout_s: 600" in PATIENT_FLOW
    (tmp_path / "create-lead.yaml").write_text(PATIENT_FLOW)
    return tmp_path


def config(
    kafka: str, unique: str, flows: Path, *, partitions: int = 1, retry_ms: tuple[int, ...] = (500,)
) -> ServiceConfig:
    return ServiceConfig(
        worker=WorkerSettings(
            bootstrap_servers=kafka,
            app_id=f"pipe-{unique}",
            flows_dir=flows,
            topic_partitions=partitions,
        ),
        connection=UNUSED_CONNECTION,  # the fake gateway stands in for the client
        topics=CatalogueSettings(
            prefix=f"pipe-{unique}", partitions=partitions, retry_delays_ms=retry_ms
        ),
        engine=EngineSettings(max_in_flight=500),
    )


def event(number: int, ticket: str | None = None, email: str | None = None) -> tuple[bytes, bytes]:
    ticket = ticket or f"T{number}"
    return ticket.encode(), ticket_created(f"e{number}", ticket, email or f"p{number}@x.io")


async def results(kafka: str, cfg: ServiceConfig) -> dict[str, str]:
    """Run results so far: event id → status."""
    records = await read_slice(kafka, f"{cfg.topics.prefix}.run-results")
    return {orjson.loads(r.value)["event_id"]: orjson.loads(r.value)["status"] for r in records}


@pytest.fixture
async def running() -> AsyncIterator[list[Service]]:
    """Services a test starts; stopped at the end whatever happens."""
    services: list[Service] = []
    yield services
    for service in services:
        await service.stop(grace_s=0)


async def start(services: list[Service], cfg: ServiceConfig, gateway: FakeSalesforce) -> Service:
    service = Service(cfg, gateway=gateway)
    await service.start()
    services.append(service)
    return service


async def test_a_slow_event_does_not_hold_back_other_tickets(
    kafka: str, unique: str, flows: Path, running: list[Service]
) -> None:
    """One event's Salesforce call does not return; the five events after it on the same
    partition, of other tickets, all finish meanwhile; the slow one finishes once released."""
    gateway = HoldingSalesforce()
    cfg = config(kafka, unique, flows)
    await start(running, cfg, gateway)
    await produce(
        kafka,
        f"{cfg.topics.prefix}.tickets",
        [event(0, "A", HELD)] + [event(i) for i in range(1, 6)],
    )
    done = await wait_for(
        lambda: _has(kafka, cfg, {f"e{i}" for i in range(1, 6)}), timeout_s=60,
        what="the five quick events' results",
    )  # fmt: skip
    assert "e0" not in done
    assert gateway.entered == [HELD]
    gateway.release.set()
    await wait_for(lambda: _has(kafka, cfg, {"e0"}), timeout_s=60, what="the slow event's result")


@pytest.mark.parametrize("history", [0, 3], ids=["never-committed", "committed-before"])
async def test_a_stopped_worker_never_commits_past_an_unfinished_event(
    kafka: str, unique: str, flows: Path, running: list[Service], history: int
) -> None:
    """Events after an unfinished one finish first (out of order). A commit then, and the
    commit of a worker stopped with no grace (its unfinished call cancelled), stay at the
    unfinished event, on a partition never committed as on one committed before. A new worker
    finishes it, and the commit moves to the end."""
    gateway = HoldingSalesforce()
    cfg = config(kafka, unique, flows)
    group, tickets = cfg.worker.app_id, f"{cfg.topics.prefix}.tickets"
    service = await start(running, cfg, gateway)
    if history:
        await produce(kafka, tickets, [event(i) for i in range(history)])
        await wait_for(
            lambda: _committed_at_least(kafka, group, tickets, history), timeout_s=60,
            what=f"the first {history} events committed",
        )  # fmt: skip
    held_offset = history
    await produce(
        kafka, tickets, [event(held_offset, "A", HELD)] + [event(history + i) for i in range(1, 5)]
    )
    quick = {f"e{history + i}" for i in range(1, 5)}
    await wait_for(lambda: _has(kafka, cfg, quick), timeout_s=60, what="the later events' results")
    assert gateway.entered == [HELD]
    await service.app.consumer.commit()  # whatever faust may commit, it commits now
    assert (await committed(kafka, group, tickets)).get(0, 0) == held_offset

    await service.stop(grace_s=0)  # the held call is cancelled; faust commits as it stops
    running.remove(service)
    assert gateway.cancelled == 1
    assert (await committed(kafka, group, tickets)).get(0, 0) == held_offset

    gateway.release.set()
    await start(running, cfg, gateway)
    await wait_for(
        lambda: _has(kafka, cfg, {f"e{held_offset}"}), timeout_s=60, what="the held event"
    )
    await wait_for(
        lambda: _committed_at_least(kafka, group, tickets, history + 5), timeout_s=60,
        what="the commit at the end of the partition",
    )  # fmt: skip
    assert len(gateway.records["Lead"]) == history + 5  # redone events reused the ledger


@pytest.mark.parametrize("history", [0, 3], ids=["never-committed", "committed-before"])
async def test_faust_alone_commits_past_an_unfinished_record(
    kafka: str, unique: str, history: int, tmp_path: Path
) -> None:
    """Negative control, the reason for the commit tracker: an agent that acknowledges each
    record to faust as soon as it finishes, with one record unfinished, gets a commit past that
    record — on a partition never committed (faust skips its head-gap check) and right after
    a committed offset (faust#606)."""
    topic = f"neg-{unique}"
    await create_topics(kafka, [topic])
    app = faust.App(
        f"neg-{unique}", broker=f"kafka://{kafka}", store="memory://", web_enabled=False,
        topic_partitions=1, consumer_auto_offset_reset="earliest", stream_wait_empty=False,
        datadir=str(tmp_path),  # not <cwd>/neg-…-data
    )  # fmt: skip
    acked: list[int] = []

    @app.agent(
        app.topic(
            topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
    )
    async def consume(stream: faust.StreamT[bytes]) -> None:
        records = stream.noack()  # type: ignore[attr-defined]
        async for _ in records:
            record = records.current_event
            if record.message.offset != history:  # the record at `history` never finishes
                record.ack()
                acked.append(record.message.offset)

    await app.start()
    try:
        if history:
            await produce(kafka, topic, [(b"k", b"v")] * history)
            await wait_for(lambda: len(acked) == history, what="the first records")
            await app.consumer.commit()
            assert (await committed(kafka, app.conf.id, topic)).get(0) == history
        await produce(kafka, topic, [(b"k", b"v")] * 5)
        await wait_for(lambda: len(acked) == history + 4, what="the later records")
        await app.consumer.commit()
        assert (await committed(kafka, app.conf.id, topic)).get(0) == history + 5
    finally:
        await app.stop()


async def test_a_rebalance_cancels_the_revoked_work_at_once_and_commits_nothing_past_it(
    kafka: str, unique: str, flows: Path, running: list[Service]
) -> None:
    """A second worker joins while the first holds an unfinished call: the first worker's
    partitions are revoked, the call is cancelled without waiting for it, and no commit passes
    the unfinished event. Then every event gets its result, from one worker or the other."""
    gateway = HoldingSalesforce()
    cfg = config(kafka, unique, flows, partitions=2)
    group, tickets = cfg.worker.app_id, f"{cfg.topics.prefix}.tickets"
    first = await start(running, cfg, gateway)
    await produce(kafka, tickets, [event(0, "A", HELD)] + [event(i) for i in range(1, 9)])
    await wait_for(
        lambda: _has(kafka, cfg, {f"e{i}" for i in range(1, 9)}), timeout_s=60,
        what="the quick events' results",
    )  # fmt: skip
    (held,) = [r for r in await read(kafka, tickets, 9) if r.key == b"A"]

    await start(running, cfg, gateway)  # joins the group: a rebalance
    await wait_for(lambda: gateway.cancelled >= 1, timeout_s=60, what="the held call cancelled")
    for service in running:
        await service.app.consumer.commit()
    assert (await committed(kafka, group, tickets)).get(held.partition, 0) <= held.offset
    assert first.worker.scheduler.unreleased(TP(tickets, held.partition)) == 0

    gateway.release.set()
    await wait_for(lambda: _has(kafka, cfg, {"e0"}), timeout_s=60, what="the held event's result")
    assert len(gateway.records["Lead"]) == 9


async def test_stop_waits_for_every_agents_work_and_not_for_a_retry_tiers_wait(
    kafka: str, unique: str, flows: Path, running: list[Service]
) -> None:
    """Stopping waits (up to the grace) for records in flight in the input agent and in a retry
    tier alike; a retry record waiting an hour for its time is no reason to wait, and stays
    uncommitted for the next worker."""
    gateway = HoldingSalesforce(held=frozenset({HELD, "retry@x.io"}))
    cfg = config(kafka, unique, flows, retry_ms=(500, 3_600_000))
    group, prefix = cfg.worker.app_id, cfg.topics.prefix
    service = await start(running, cfg, gateway)
    now_ms = int(time.time() * 1000)
    await _produce_retry(
        kafka, f"{prefix}.retry.500ms", event(1, "R", "retry@x.io"), now_ms, prefix
    )
    await _produce_retry(kafka, f"{prefix}.retry.1h", event(2, "L"), now_ms + 3_600_000, prefix)
    await produce(kafka, f"{prefix}.tickets", [event(0, "A", HELD)])
    await wait_for(lambda: len(gateway.entered) == 2, timeout_s=60, what="both held calls")
    await wait_for(lambda: service.worker.waiting == 1, timeout_s=60, what="the 1h wait")

    stopping = asyncio.create_task(service.stop(grace_s=120))
    await wait_for(lambda: service.engine.stopping.is_set(), what="the stop to begin")
    gateway.release.set()
    await asyncio.wait_for(stopping, 120)
    running.remove(service)
    assert service.worker.waiting == 0
    assert {"e0", "e1"} <= set(await results(kafka, cfg))
    assert (await committed(kafka, group, f"{prefix}.tickets")).get(0) == 1
    assert (await committed(kafka, group, f"{prefix}.retry.500ms")).get(0) == 1
    assert (await committed(kafka, group, f"{prefix}.retry.1h")).get(0, 0) == 0


async def _produce_retry(
    kafka: str, topic: str, record: tuple[bytes, bytes], not_before_ms: int, prefix: str
) -> None:
    context = h.RetryContext(
        attempt=1, not_before_ms=not_before_ms, origin_topic=f"{prefix}.tickets",
        origin_partition=0, origin_offset=99, flow="create-lead",
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, record[1], key=record[0], headers=h.retry_headers(context)
        )
    finally:
        await producer.stop()


async def _has(kafka: str, cfg: ServiceConfig, events: set[str]) -> dict[str, str] | None:
    found = await results(kafka, cfg)
    return found if events <= set(found) else None


async def _committed_at_least(kafka: str, group: str, topic: str, offset: int) -> bool:
    return (await committed(kafka, group, topic)).get(0, 0) >= offset
