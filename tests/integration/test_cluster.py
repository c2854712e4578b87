"""On a three-node cluster: a broker dies, a worker dies; every effect happens once, in order.

Both tests run real worker processes against the session's three-node KRaft cluster
(``kafka_cluster``) and the emulator (duplicate rules off, so only the worker's mechanisms keep
records single). The flow opens one case per event, keyed by the event id in its Subject; the
case numbers Salesforce hands out show the order in which a ticket's events took effect.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from agents.ops.slices import read_slice
from bench.processes import EmulatorAddress, WorkerProcess, worker_env
from localkafka import LocalBroker
from sfemulator import Emulator, EmulatorConfig
from tests.agents.test_engine import ticket_created
from tests.kafkatools import (
    create_topics,
    group_members,
    partitions_of,
    produce,
    topic_config,
    wait_for,
)

FLOW = """\
name: open-case
version: 1
trigger:
  event_types: [ticket.created]
steps:
  - id: open_case
    action: salesforce.create_record
    object: case
    inputs: {name: "{{ event.id }}", description: "ticket {{ event.ticket_id }}"}
    policy: {max_attempts: 8, backoff: {initial_s: 0.05, max_s: 0.5}}
"""
TICKETS = 20


def events(per_ticket: int) -> list[tuple[str, str]]:
    """(event id, ticket id), interleaved across tickets as a helpdesk would send them."""
    return [
        (f"e{i:03d}-t{i % TICKETS:02d}", f"t{i % TICKETS:02d}") for i in range(TICKETS * per_ticket)
    ]


def messages(chosen: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(t.encode(), ticket_created(e, t, f"{e}@example.com")) for e, t in chosen]


async def setup(
    cluster: LocalBroker, unique: str, tmp_path: Path, emu: Emulator, name: str
) -> tuple[dict[str, str], Path, str]:
    """The workers' environment, their flow folder, and the input topic (3 copies, 2 in sync)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "open-case.yaml").write_text(FLOW)
    prefix = f"{name}-{unique}"
    env = worker_env(
        cluster.bootstrap_servers,
        prefix,
        prefix,
        EmulatorAddress.of(emu),
        PARTITIONS="6",
        RETRY_DELAYS="1s,2s",
    )
    tickets = f"{prefix}.tickets"
    await create_topics(
        cluster.bootstrap_servers,
        [tickets],
        partitions=6,
        replication=3,
        config={"min.insync.replicas": "2"},
    )
    return env, flows, tickets


def finished(
    kafka: str, prefix: str, expected: list[tuple[str, str]], workers: list[WorkerProcess]
) -> Callable[[], Awaitable[bool]]:
    """Every expected event has a succeeded or dead-lettered run result."""

    async def check() -> bool:
        if all(w.exit_code is not None for w in workers):
            raise AssertionError(f"every worker exited\n{workers[0].tail()}")
        runs = [orjson.loads(r.value) for r in await read_slice(kafka, f"{prefix}.run-results")]
        done = {r["event_id"] for r in runs if r["status"] in {"succeeded", "dead_letter"}}
        return done >= {event for event, _ in expected}

    return check


async def unfinished(kafka: str, prefix: str) -> str:
    """Which input partitions hold events without a final run result, and the group's
    committed offsets: what a stalled hand-over looks like, for the failure message."""
    runs = [orjson.loads(r.value) for r in await read_slice(kafka, f"{prefix}.run-results")]
    done = {r["event_id"] for r in runs if r["status"] in {"succeeded", "dead_letter"}}
    waiting = Counter(
        record.partition
        for record in await read_slice(kafka, f"{prefix}.tickets")
        if orjson.loads(record.value)["id"] not in done
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(prefix)
    finally:
        await admin.close()
    committed = {
        tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic.endswith(".tickets")
    }
    return (
        f"unfinished events by input partition: {dict(sorted(waiting.items()))}; "
        f"committed offsets of the input partitions: {dict(sorted(committed.items()))} "
        "(a partition missing here has none)"
    )


async def check_exactly_once_in_order(
    kafka: str, prefix: str, emu: Emulator, expected: list[tuple[str, str]]
) -> None:
    """One case per event, no dead letter, one succeeded run per event, each ticket in order."""
    cases = sorted(emu.records("Case"), key=lambda case: case["CaseNumber"])
    per_event = Counter(case["Subject"] for case in cases)
    assert {e: n for e, n in per_event.items() if n != 1} == {}
    assert sorted(per_event) == sorted(event for event, _ in expected)
    assert await read_slice(kafka, f"{prefix}.dead-letters") == []
    runs = [orjson.loads(r.value) for r in await read_slice(kafka, f"{prefix}.run-results")]
    succeeded: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        if run["status"] == "succeeded":
            succeeded[run["event_id"]].add(run["run_id"])
    assert {
        event: len(succeeded[event]) for event, _ in expected if len(succeeded[event]) != 1
    } == {}
    took_effect: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        took_effect[case["Description"].removeprefix("ticket ")].append(case["Subject"])
    arrived: dict[str, list[str]] = defaultdict(list)
    for event, ticket in expected:
        arrived[ticket].append(event)
    assert took_effect == arrived


async def test_losing_the_input_partitions_leader_loses_and_duplicates_nothing(
    kafka_cluster: LocalBroker, unique: str, tmp_path: Path
) -> None:
    """SIGKILL the broker that leads the input partition mid-stream: the worker goes on with
    the other two (3 copies, 2 in sync) and every event takes effect once, in ticket order."""
    kafka = kafka_cluster.bootstrap_servers
    expected = events(per_ticket=6)
    half = len(expected) // 2
    async with Emulator(EmulatorConfig(seed=8, latency_ms=10.0, duplicate_rules=())) as emu:
        env, flows, tickets = await setup(kafka_cluster, unique, tmp_path, emu, "leader")
        prefix = env["ACTIONFLOWS_TOPIC_PREFIX"]
        await produce(kafka, tickets, messages(expected[:half]))
        worker = WorkerProcess(env, flows, tmp_path / "worker.log").start()
        leader = (await partitions_of(kafka, tickets))[0]["leader"]
        try:
            await wait_for(
                _cases_at_least(worker, emu, half // 3),
                timeout_s=120,
                what=f"{half // 3} cases before the broker dies",
            )
            kafka_cluster.kill(leader)
            await produce(kafka, tickets, messages(expected[half:]))
            await wait_for(
                finished(kafka, prefix, expected, [worker]),
                timeout_s=240,
                what=f"every event with broker {leader} down\n{worker.tail()}",
            )
            moved = (await partitions_of(kafka, tickets))[0]
            assert moved["leader"] != leader
            await worker.stop()
        finally:
            await worker.kill()
            await kafka_cluster.restart(leader)
        await check_exactly_once_in_order(kafka, prefix, emu, expected)
    for topic in (f"{prefix}.run-results", f"{prefix}.ledger", f"{prefix}.retry.1s"):
        assert {len(p["replicas"]) for p in (await partitions_of(kafka, topic)).values()} == {3}
        assert (await topic_config(kafka, topic))["min.insync.replicas"] == "2"


async def test_a_killed_worker_hands_its_tickets_over_in_order_without_duplicates(
    kafka_cluster: LocalBroker, unique: str, tmp_path: Path
) -> None:
    """Three workers share the input; one is SIGKILLed mid-stream. After the rebalance the other
    two finish its tickets: every event takes effect once, and each ticket's in its order."""
    kafka = kafka_cluster.bootstrap_servers
    expected = events(per_ticket=8)
    config = EmulatorConfig(seed=9, latency_ms=20.0, duplicate_rules=())
    async with Emulator(config) as emu:
        env, flows, tickets = await setup(kafka_cluster, unique, tmp_path, emu, "failover")
        prefix = env["ACTIONFLOWS_TOPIC_PREFIX"]
        workers = [
            WorkerProcess(env, flows, tmp_path / f"worker-{n}.log").start() for n in range(3)
        ]
        try:
            await wait_for(
                _members(kafka, prefix, 3, workers),
                timeout_s=180,
                what="three workers in one stable group",
            )
            await produce(kafka, tickets, messages(expected))
            await wait_for(
                _cases_at_least(workers[0], emu, len(expected) // 4),
                timeout_s=120,
                what="a quarter of the cases",
            )
            victim = random.Random(unique).choice(workers)
            await victim.kill()
            survivors = [w for w in workers if w is not victim]
            await wait_for(
                _members(kafka, prefix, 2, survivors),
                timeout_s=120,
                what="the group to rebalance onto the two survivors",
            )
            try:
                await wait_for(
                    finished(kafka, prefix, expected, survivors),
                    timeout_s=240,
                    what="every event after the kill",
                )
            except AssertionError as timeout:
                raise AssertionError(f"{timeout}\n{await unfinished(kafka, prefix)}") from None
            for worker in survivors:
                await worker.stop()
        finally:
            for worker in workers:
                await worker.kill()
        await check_exactly_once_in_order(kafka, prefix, emu, expected)


async def test_a_worker_told_to_stop_while_no_broker_answers_exits_within_its_bound(
    kafka_cluster: LocalBroker, unique: str, tmp_path: Path
) -> None:
    """Every broker is down and the worker's fetches are failing when it gets SIGTERM: it exits
    within its bound (a 10 s grace, then at most 10 s for faust's own stop), not after the
    minute faust waits for a consumer that failed to close."""
    kafka = kafka_cluster.bootstrap_servers
    async with Emulator(EmulatorConfig(seed=10, latency_ms=10.0, duplicate_rules=())) as emu:
        env, flows, tickets = await setup(kafka_cluster, unique, tmp_path, emu, "down")
        prefix = env["ACTIONFLOWS_TOPIC_PREFIX"]
        log = tmp_path / "worker.log"
        worker = WorkerProcess(env, flows, log).start()
        try:
            await wait_for(
                _members(kafka, prefix, 1, [worker]), timeout_s=180, what="the worker's group"
            )
            await produce(kafka, tickets, messages(events(per_ticket=1)))
            await wait_for(_cases_at_least(worker, emu, 1), timeout_s=120, what="a first case")
            for node in kafka_cluster.nodes:
                kafka_cluster.kill(node.node_id)
            await wait_for(
                lambda: "Failed fetch messages" in log.read_text(errors="replace"),
                timeout_s=60,
                what="the worker's fetches to fail",
            )
            await worker.stop(timeout_s=35)
        finally:
            await worker.kill()
            await asyncio.gather(
                *(kafka_cluster.restart(n.node_id) for n in kafka_cluster.nodes if not n.running)
            )
    assert "did not stop within" in log.read_text(errors="replace")  # a bound cut a stop short


def _cases_at_least(
    worker: WorkerProcess, emu: Emulator, count: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        worker.assert_running()
        return len(emu.records("Case")) >= count

    return check


def _members(
    kafka: str, group: str, count: int, workers: list[WorkerProcess]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        for worker in workers:
            worker.assert_running()
        return await group_members(kafka, group) == count

    return check
