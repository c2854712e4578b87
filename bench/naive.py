"""The naive baseline: a plain consumer making one awaited Salesforce call at a time per event.

What someone would write first with common clients: an ``AIOKafkaConsumer`` in a consumer
group with auto-commit, and for each event the flow's REST calls through an aiohttp session,
each awaited before the next. No batching, no concurrency, no ledger, no outputs. It reads the
same kind of backlog as the worker, from the same emulator, and stops after ``seconds`` or at
the end of the backlog.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from bench.children import EmulatorHandle
from bench.kafka import create_topics, event, produce
from pipeline.catalogue.soql import quote


@dataclass(frozen=True, slots=True)
class NaiveRun:
    flow: str
    latency_ms: float
    events: int
    seconds: float
    api_calls_per_event: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


class Rest:
    """The two REST calls the flows make, each awaited on its own."""

    def __init__(self, http: aiohttp.ClientSession, emulator: EmulatorHandle) -> None:
        self.http = http
        self.base = f"{emulator.url}/services/data/v{emulator.api_version}"
        self.headers = {"Authorization": f"Bearer {emulator.access_token}"}

    async def create_lead(self, data: dict[str, Any]) -> None:
        person = data["requester"]
        first, _, last = person["name"].rpartition(" ")
        body = {
            "FirstName": first or None,
            "LastName": last,
            "Company": "[not provided]",
            "Email": person["email"],
            "LeadSource": "Support",
            "Description": f"Ticket {data['ticket']['id']}: {data['ticket']['subject']}",
        }
        url = f"{self.base}/sobjects/Lead/"
        async with self.http.post(url, json=body, headers=self.headers) as response:
            response.raise_for_status()

    async def find_else_create(self, data: dict[str, Any]) -> None:
        soql = f"SELECT Id FROM Lead WHERE Email = {quote(data['requester']['email'])} LIMIT 1"  # noqa: S608
        url = f"{self.base}/query"
        async with self.http.get(url, params={"q": soql}, headers=self.headers) as response:
            response.raise_for_status()
            found = await response.json()
        if not found["records"]:
            await self.create_lead(data)


async def measure(
    bootstrap: str,
    emulator: EmulatorHandle,
    *,
    flow: str,
    latency_ms: float,
    events: int,
    seconds: float,
) -> NaiveRun:
    """Consume a backlog of ``events`` for at most ``seconds``, one flow's calls at a time."""
    await emulator.reset()
    tag = uuid.uuid4().hex[:8]
    topic = f"bench-naive-{tag}"
    await create_topics(bootstrap, [topic])
    await produce(bootstrap, topic, [event(i, tag) for i in range(events)])
    http = aiohttp.ClientSession()
    rest = Rest(http, emulator)
    act = rest.create_lead if flow == "create-lead" else rest.find_else_create
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-naive-{tag}",
        auto_offset_reset="earliest",
    )
    calls_before = await emulator.api_calls()
    await consumer.start()
    done = 0
    started: float | None = None
    try:
        while done < events:
            record = await consumer.getone()
            if started is None:
                started = time.monotonic()
            await act(orjson.loads(record.value))
            done += 1
            if time.monotonic() - started >= seconds:
                break
    finally:
        elapsed = time.monotonic() - (started or time.monotonic())
        await consumer.stop()
        await http.close()
    calls = await emulator.api_calls() - calls_before
    return NaiveRun(flow, latency_ms, done, max(elapsed, 1e-3), calls / max(done, 1))
