"""``actionflows replay`` on the real broker: slices, filters, markers, dry runs, replaying twice."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ops import replay as replay_cli
from agents.ops.dry_run import DryRunner, EventPlan
from agents.ops.replay import ReplayRequest, replay, replay_dry_run
from agents.ops.slices import EventFilter, OffsetBound, SliceSpec
from agents.service import Service
from pipeline.ledger import InMemoryLedger
from pipeline.loader import load_flows
from pipeline.runner import Ports
from salesforce.client import SalesforceClient
from salesforce.consistency import ConsistentGateway
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.integration.test_engine_e2e import service_config
from tests.kafkatools import create_topics, read, wait_for
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings

TRACE = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
# Record timestamps: a day ago, on a whole second (brokers refuse times far in the future).
T0 = (int(time.time()) - 86_400) * 1000


def interaction(event_id: str, ticket: str) -> bytes:
    return orjson.dumps({"id": event_id, "type": "interaction.call", "ticket": {"id": ticket}})


async def produce_at(kafka: str, topic: str, records: list[tuple[int, bytes, bytes, int]]) -> None:
    """Produce (partition, key, value, timestamp) records with a trace header, acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for partition, key, value, at in records:
            await producer.send(topic, value, key=key, partition=partition, timestamp_ms=at,
                                headers=[TRACE])  # fmt: skip
        await producer.flush()
    finally:
        await producer.stop()


async def end_offsets(kafka: str, topic: str, partitions: int) -> list[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        return [ends[tp] for tp in tps]
    finally:
        await consumer.stop()


@pytest.fixture
async def source(kafka: str, unique: str) -> tuple[str, str]:
    """An input topic of 2 partitions: partition 0 holds 6 records of T1 (created, call
    alternating), partition 1 holds 4 of T2, one second apart from T0; and an empty target."""
    topic, target = f"rp-{unique}.tickets", f"rp-{unique}.replayed"
    await create_topics(kafka, [topic], partitions=2)
    await create_topics(kafka, [target], partitions=1)
    records = [
        (0, b"T1", ticket_created(f"a{i}", "T1", "ada@example.com") if i % 2 == 0
         else interaction(f"a{i}", "T1"), T0 + i * 1000)
        for i in range(6)
    ] + [(1, b"T2", ticket_created(f"b{i}", "T2", "bob@example.com"), T0 + i * 1000)
         for i in range(4)]  # fmt: skip
    await produce_at(kafka, topic, records)
    return topic, target


async def test_an_offset_slice_with_filters_is_republished_with_a_replay_marker(
    kafka: str, source: tuple[str, str]
) -> None:
    """Offsets 1..4 of partition 0, ticket.* only: two records, key/value/headers kept, marked."""
    topic, target = source
    request = ReplayRequest(
        topic, target,
        SliceSpec(from_offsets=OffsetBound(per_partition={0: 1}),
                  to_offsets=OffsetBound(per_partition={0: 4})),
        EventFilter(types=("ticket.*",)), replay_id="replay-test-1",
    )  # fmt: skip
    report = await replay(kafka, request)
    assert (report.read, report.selected, report.republished) == (4, 2, 2)
    assert report.ranges == {0: (1, 5)}
    copies = await read(kafka, target, 2)
    assert [orjson.loads(r.value)["id"] for r in copies] == ["a2", "a4"]
    assert {r.key for r in copies} == {b"T1"}
    for record in copies:
        assert TRACE in record.headers
        assert h.parse_replay(record.headers) == h.ReplayMarker("replay-test-1", dry_run=False)


async def test_a_time_slice_reads_from_since_inclusive_to_until_exclusive(
    kafka: str, source: tuple[str, str]
) -> None:
    """[T0+1s, T0+3s) holds records 1 and 2 of each partition; --ticket T2 keeps T2's."""
    topic, target = source
    spec = SliceSpec(since_ms=T0 + 1000, until_ms=T0 + 3000)
    report = await replay(kafka, ReplayRequest(topic, target, spec, EventFilter(frozenset({"T2"}))))
    assert (report.read, report.selected) == (4, 2)
    copies = await read(kafka, target, 2)
    assert sorted(orjson.loads(r.value)["id"] for r in copies) == ["b1", "b2"]


async def test_a_replay_into_its_own_topic_stops_at_the_captured_end(
    kafka: str, source: tuple[str, str]
) -> None:
    """Republishing into the topic read terminates, and copies keep their partition."""
    topic, _ = source
    report = await asyncio.wait_for(replay(kafka, ReplayRequest(topic)), timeout=60)
    assert report.republished == 10
    assert await end_offsets(kafka, topic, 2) == [12, 8]


async def test_the_command_prints_its_replay_id_and_a_summary(
    kafka: str, source: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``actionflows replay --partition 1 --target …`` republishes partition 1 and says so."""
    topic, target = source
    argv = ["--bootstrap-servers", kafka, "--topic", topic, "--target", target, "--partition", "1"]
    assert await asyncio.to_thread(replay_cli.main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("replay id: replay-")
    assert f"republished 4 to {target}" in out
    assert len(await read(kafka, target, 4)) == 4


async def test_a_dry_run_reports_the_writes_and_makes_none(
    kafka: str, source: tuple[str, str], tmp_path: Path
) -> None:
    """Against an emulated org: the creates are reported, no lead exists, nothing is published."""
    topic, target = source
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    plans: list[EventPlan] = []
    async with Emulator(EmulatorConfig(seed=0)) as emu:
        settings = emulator_connection(emu.url, emu.credentials, emu.api_version)
        async with SalesforceClient(settings) as client:
            catalogue = Catalogue.build(CatalogueSettings(prefix=topic.removesuffix(".tickets")))
            ports = Ports(gateway=client, ledger=InMemoryLedger())
            runner = DryRunner(load_flows(tmp_path), catalogue, ports)
            report = await replay_dry_run(kafka, ReplayRequest(topic, target), runner,
                                          on_event=plans.append)  # fmt: skip
        assert emu.records("Lead") == []
    assert (report.tally.events, report.tally.runs) == (10, 7)  # 3 calls start no flow
    assert report.tally.writes == {"create_record lead": 7}
    writes = [w for plan in plans for flow in plan.flows for w in flow.writes]
    assert {w.fields["Email"] for w in writes} == {"ada@example.com", "bob@example.com"}
    assert await end_offsets(kafka, target, 1) == [0]


async def test_the_dry_run_command_masks_personal_data(
    kafka: str, source: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--dry-run --emulator`` prints each planned create with the email masked."""
    topic, _ = source
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    argv = ["--bootstrap-servers", kafka, "--topic", topic, "--partition", "1", "--dry-run",
            "--emulator", "--flows", str(tmp_path)]  # fmt: skip
    assert await asyncio.to_thread(replay_cli.main, argv) == 0
    out = capsys.readouterr().out
    assert out.count("create_lead: create_record lead") == 4
    assert "Email='***'" in out
    assert "bob@example.com" not in out
    assert "writes: create_record lead x4" in out
    assert "nothing was published" in out


async def test_replaying_a_slice_twice_creates_nothing_new(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """Through the real worker: a replayed event keeps its id, so the ledger reuses its steps
    and the org still holds one lead per event after two replays."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    async with Emulator(EmulatorConfig(seed=1)) as emu:
        config = service_config(kafka, unique, tmp_path, emu)
        async with Service(config):
            topic = f"{config.topics.prefix}.tickets"
            events = [(b"T%d" % i, ticket_created(f"e{i}", f"T{i}", f"p{i}@example.com"), T0)
                      for i in range(3)]  # fmt: skip
            await produce_at(
                kafka, topic, [(i % 2, k, v, at) for i, (k, v, at) in enumerate(events)]
            )
            await read(kafka, f"{config.topics.prefix}.run-results", 3)
            for _ in range(2):
                await replay(kafka, ReplayRequest(topic, slice=SliceSpec(until_ms=T0 + 1)))
            results = await read(kafka, f"{config.topics.prefix}.run-results", 9)

            async def three_leads() -> bool:
                return len(emu.records("Lead")) == 3

            await wait_for(three_leads, what="three leads")
    statuses = [orjson.loads(r.value)["status"] for r in results]
    assert statuses == ["succeeded"] * 9
    assert sorted(lead["Email"] for lead in emu.records("Lead")) == [
        "p0@example.com", "p1@example.com", "p2@example.com"
    ]  # fmt: skip


async def test_a_dry_run_consults_the_workers_ledger(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """After the worker ran the events, a dry run of the same slice reads the ledger topic:
    every step of those runs would be reused, so it plans no write; an event the worker never
    saw is planned in full."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    async with Emulator(EmulatorConfig(seed=2)) as emu:
        config = service_config(kafka, unique, tmp_path, emu)
        topic = f"{config.topics.prefix}.tickets"
        async with Service(config):
            done = [(0, b"T1", ticket_created("d1", "T1", "dee@example.com"), T0),
                    (1, b"T2", ticket_created("d2", "T2", "eve@example.com"), T0)]  # fmt: skip
            await produce_at(kafka, topic, done)
            await read(kafka, f"{config.topics.prefix}.run-results", 2)
        new = ticket_created("d3", "T3", "fay@example.com")
        await produce_at(kafka, topic, [(0, b"T3", new, T0 + 1000)])
        catalogue = Catalogue.build(config.topics)
        plans: list[EventPlan] = []
        args = argparse.Namespace(json=False)
        settings = emulator_connection(emu.url, emu.credentials, emu.api_version)
        async with (
            SalesforceClient(settings) as client,
            replay_cli.worker_ledger(kafka, catalogue, args) as ledger,
        ):
            ports = Ports(gateway=ConsistentGateway(client, client), ledger=ledger)
            runner = DryRunner(load_flows(tmp_path), catalogue, ports)
            report = await replay_dry_run(kafka, ReplayRequest(topic), runner,
                                          on_event=plans.append)  # fmt: skip
        assert len(emu.records("Lead")) == 2
    by_event = {plan.event.id: plan.flows[0] for plan in plans if plan.event is not None}
    for seen in ("d1", "d2"):
        assert by_event[seen].reused == ("find_lead", "create_lead")
        assert by_event[seen].writes == ()
    assert by_event["d3"].reused == ()
    assert [w.step for w in by_event["d3"].writes] == ["create_lead"]
    assert report.tally.writes == {"create_record lead": 1}
