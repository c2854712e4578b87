"""The fair ceiling: a faust agent that does no work but moves the records the flow moves.

It runs in its own process, on the worker's own faust app settings (:func:`agents.app.create_app`:
acks=all, the same producer batching and compression), consumes the same events from the same
number of partitions, and for each event produces as many records as the flow writes per event
(step outputs, the run result, ledger entries; measured by the flow's own run), each the size of
the event, then acknowledges the event once they are all acknowledged. What it reaches is what
faust and the broker allow this machine before any flow, Salesforce call or ledger logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.streams import Stream

from agents.app import create_app
from agents.settings import WorkerSettings
from bench.children import child_process
from bench.kafka import (
    PARTITIONS,
    Progress,
    create_topics,
    edge_timestamps,
    event,
    produce,
    wait_for_count,
)

BATCH = 500  # events taken from the stream at once, as the worker's agent takes them


@dataclass(frozen=True, slots=True)
class RelayConfig:
    bootstrap: str
    app_id: str
    source: str
    sink: str
    copies: int  # records produced per event consumed


@contextlib.asynccontextmanager
async def relay(config: RelayConfig) -> AsyncIterator[faust.App]:
    """The no-work agent, started (in the child process)."""
    app = create_app(
        WorkerSettings(
            bootstrap_servers=config.bootstrap, app_id=config.app_id, topic_partitions=PARTITIONS
        )
    )
    source = app.topic(config.source, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(source, name="bench.relay")
    async def move(stream: faust.StreamT[Any]) -> None:
        assert isinstance(stream, Stream)
        async for events in stream.noack_take(BATCH, within=0.02):
            futures = [
                await app.producer.send(
                    config.sink, e.message.key, e.message.value, None, None, None
                )
                for e in events
                for _ in range(config.copies)
            ]
            await asyncio.gather(*futures)
            for e in events:
                await stream.ack(e)

    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@dataclass(frozen=True, slots=True)
class FairRun:
    events: int
    copies: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def measure(bootstrap: str, *, events: int, copies: int) -> FairRun:
    """Relay a backlog of ``events`` benchmark events, ``copies`` records out for each."""
    tag = uuid.uuid4().hex[:8]
    source, sink = f"bench-fair-in-{tag}", f"bench-fair-out-{tag}"
    await create_topics(bootstrap, [source, sink])
    await produce(bootstrap, source, [event(i, tag) for i in range(events)])
    config = RelayConfig(bootstrap, f"bench-fair-{tag}", source, sink, copies)
    target = events * copies
    async with child_process(relay, config), Progress(bootstrap, [sink]) as progress:
        await wait_for_count(progress, target, timeout_s=max(300.0, events / 100))
    first, last = await edge_timestamps(bootstrap, sink)
    return FairRun(events=events, copies=copies, seconds=max((last - first) / 1000, 1e-3))


def copies_for(records_per_event: float) -> int:
    """Records to produce per event for a flow that writes ``records_per_event``."""
    return max(1, math.ceil(records_per_event - 0.05))
