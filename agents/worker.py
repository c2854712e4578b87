"""Wires the engine into faust: one agent for the input topics and one per retry tier.

Acknowledgement is manual (``noack_take``): a batch's events are acknowledged only after
:meth:`Engine.handle_batch` returned, that is after every step output, run result, retry and
dead letter of every event in it is acknowledged by the broker. faust then commits offsets on
its timer. An exception never escapes the loop (the engine turns failures into dead letters),
and an interrupted batch is never acknowledged, so its events are delivered again.

The agents keep faust's ``concurrency=1``: with several actors faust can commit past in-flight
work (faust#606). Parallelism comes from the engine running tickets of a batch concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faust.streams import Stream

from agents.engine import Engine, EngineStopped
from agents.outcomes import Inbound, Outbound
from topics.catalogue import Catalogue

log = logging.getLogger(__name__)


class FaustPublisher:
    """Publishes through the app's producer and waits for every acknowledgement.

    When the broker cannot take the records, it keeps trying (with a capped backoff) instead of
    failing: the batch stays unacknowledged, so nothing is committed past unpublished outcomes.
    """

    def __init__(
        self, app: faust.App, stopping: asyncio.Event, *, max_backoff_s: float = 5.0
    ) -> None:
        self.app = app
        self.stopping = stopping
        self.max_backoff_s = max_backoff_s

    async def publish(self, records: Sequence[Outbound]) -> None:
        pending = list(records)
        delay = 0.1
        while pending:
            futures = [
                await self.app.producer.send(r.topic, r.key, r.value, None, None, r.headers)
                for r in pending
            ]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [
                r for r, res in zip(pending, results, strict=True) if isinstance(res, Exception)
            ]
            if failed and self.stopping.is_set():
                raise EngineStopped
            if failed:
                error = next(res for res in results if isinstance(res, Exception))
                log.warning(
                    "publishing %d records failed (%r); retrying in %.1fs",
                    len(failed),
                    error,
                    delay,
                )
                await asyncio.sleep(delay)  # backoff while the broker is unavailable
                delay = min(delay * 2, self.max_backoff_s)
            pending = failed


def inbound(event: Any) -> Inbound:
    """A faust event as the engine's :class:`Inbound`."""
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    timestamp = message.timestamp
    return Inbound(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), bytes(v)) for k, v in headers),
    )


def attach_engine(
    app: faust.App,
    engine: Engine,
    catalogue: Catalogue,
    *,
    batch_max: int = 500,
    linger_s: float = 0.02,
) -> None:
    """Register the agents that feed ``engine``: inputs, and each retry tier on its own."""

    def topic(*names: str) -> faust.TopicT:
        return app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    async def consume(stream: faust.StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # noack_take is the class's, not the protocol's
        async for events in stream.noack_take(batch_max, within=linger_s):
            try:
                await engine.handle_batch([inbound(event) for event in events])
            except EngineStopped:
                return  # shutting down mid-batch: leave it unacknowledged for redelivery
            for event in events:
                await stream.ack(event)

    app.agent(topic(*(spec.name for spec in catalogue.inputs)), name="actionflows.inputs")(consume)
    # A retry tier waits for its records' not-before time; its own agent keeps that wait from
    # holding up fresh input.
    for spec in catalogue.retry_tiers:
        app.agent(topic(spec.name), name=f"actionflows.{spec.name}")(consume)


async def ensure_topics(bootstrap_servers: str, catalogue: Catalogue) -> list[str]:
    """Create the catalogue's missing topics with their documented configs; return those made."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in catalogue.all() if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            spec.replication_factor,
                            topic_configs=spec.config(),
                        )
                        for spec in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another worker created them first
            except KafkaError as error:
                raise RuntimeError(f"could not create topics: {error!r}") from error
        return [spec.name for spec in missing]
    finally:
        await admin.close()
