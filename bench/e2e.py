"""End-to-end benchmark: events through the worker to Salesforce (the emulator) and back to Kafka.

The emulator runs in its own process (so its CPU is not the worker's), the worker in this one,
the broker in its JVM. Two measurements per setting:

- throughput: a backlog of events is on the input topic before the worker starts; events per
  second is the backlog over the time between the first and the last run result;
- latency: events are fed at a steady rate well below capacity; latency is the run result's
  timestamp minus the input record's timestamp (both producer timestamps, one clock).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.ops.slices import read_slice
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import DemoCredentials, Emulator, EmulatorConfig, emulator_connection
from topics.catalogue import CatalogueSettings

FLOWS = Path(__file__).with_name("flows")


@dataclass(frozen=True, slots=True)
class E2EResult:
    flow: str
    latency_ms: float
    events: int
    events_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    api_calls_per_event: float


def _serve_emulator(latency_ms: float, conn: Any) -> None:  # runs in the child process
    async def main() -> None:
        config = EmulatorConfig(
            seed=11, latency_ms=latency_ms, daily_api_limit=10_000_000, concurrency_limit=10_000
        )
        async with Emulator(config) as emu:
            conn.send((emu.url, emu.credentials, emu.api_version))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


class EmulatorProcess:
    def __init__(self, latency_ms: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_emulator, args=(latency_ms, child))

    def __enter__(self) -> tuple[str, DemoCredentials, str]:
        self._process.start()
        return self._conn.recv()  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def _event(i: int, flow: str) -> bytes:
    ticket = f"B{i % 1000}"
    return orjson.dumps(
        {
            "id": f"bench-{flow}-{i}",
            "type": "ticket.created",
            "ticket": {"id": ticket, "subject": "Benchmark"},
            "requester": {"name": f"Bench Person{i}", "email": f"bench{i}@example.com"},
        }
    )


async def _produce(bootstrap: str, topic: str, values: list[bytes], rate: float | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        for i, value in enumerate(values):
            if rate is not None:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the feed
            key = orjson.loads(value)["ticket"]["id"].encode()
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _collect(bootstrap: str, topic: str, count: int, timeout_s: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    if len(records) < count:
        raise RuntimeError(f"only {len(records)}/{count} run results on {topic} in {timeout_s}s")
    return records


async def _input_timestamps(bootstrap: str, topic: str) -> dict[str, int]:
    records = await read_slice(bootstrap, topic)
    return {orjson.loads(r.value)["id"]: r.timestamp for r in records}


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def measure(
    bootstrap: str,
    *,
    flow: str,
    latency_ms: float,
    events: int,
    paced_rate: float,
    paced_events: int,
    configure: Callable[[ServiceConfig], ServiceConfig] = lambda c: c,
) -> E2EResult:
    """Backlog throughput, then paced latency, for one flow at one emulator latency."""
    with EmulatorProcess(latency_ms) as (url, credentials, api_version):
        suffix = uuid.uuid4().hex[:8]
        prefix = f"bench-{suffix}"
        topics = CatalogueSettings(prefix=prefix, partitions=6, retry_delays_ms=(1000, 5000))
        config = configure(
            ServiceConfig(
                worker=WorkerSettings(
                    bootstrap_servers=bootstrap,
                    app_id=f"bench-{suffix}",
                    flows_dir=FLOWS / flow,
                    topic_partitions=6,
                ),
                connection=emulator_connection(url, credentials, api_version),
                topics=topics,
            )
        )
        tickets, results = f"{prefix}.tickets", f"{prefix}.run-results"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(tickets, 6, 1)])
        await admin.close()
        await _produce(bootstrap, tickets, [_event(i, flow) for i in range(events)], None)

        async with Service(config) as service:
            backlog = await _collect(bootstrap, results, events, timeout_s=600)
            stamps = sorted(r.timestamp for r in backlog)
            seconds = max((stamps[-1] - stamps[0]) / 1000, 1e-3)
            paced = [_event(events + i, flow) for i in range(paced_events)]
            await _produce(bootstrap, tickets, paced, paced_rate)
            everything = await _collect(bootstrap, results, events + paced_events, 600)
            api_calls = service.client.api_calls
        sent = await _input_timestamps(bootstrap, tickets)
        paced_ids = {orjson.loads(v)["id"] for v in paced}
        latencies = [
            float(r.timestamp - sent[result["event_id"]])
            for r in everything
            if (result := orjson.loads(r.value))["event_id"] in paced_ids
        ]
    return E2EResult(
        flow=flow,
        latency_ms=latency_ms,
        events=events,
        events_per_s=events / seconds,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        p99_ms=_percentile(latencies, 99),
        api_calls_per_event=api_calls / (events + paced_events),
    )
