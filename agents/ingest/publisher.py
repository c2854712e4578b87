"""The ingest's Kafka producer: a request is answered 2xx only once the broker has its records.

- ``acks=all``: an acknowledged record is on every in-sync replica.
- Not the idempotent producer, on purpose: aiokafka retries an idempotent batch until the broker
  takes it, forever, so an outage would hold records (and a shutdown) indefinitely. Here a batch
  the broker does not take within ``timeout_s`` fails, its request is answered 503, and the
  duplicate a producer retry or a sender's retry can cause is recognised downstream by its
  event id.
- Keyed by ticket id, so a ticket's events share a partition and the worker runs them in order.
- Every request waits at most ``timeout_s`` for its acknowledgements; past that, or while the
  broker cannot be reached, it fails with :class:`BrokerUnavailable` (a 503). A record whose
  wait timed out may still reach the topic later, and the sender's retry then writes it again
  under the same event id: the worker's ledger and upsert keys make that second copy harmless.
- The broker may be down when the ingest starts: the producer connects in the background
  (retrying every few seconds, creating any missing topic of the catalogue the way the worker
  does) and the ingest answers 503 until it is connected. ``/readyz`` says which.

aiokafka's producer logs record values at DEBUG; that logger is held at INFO here so a body
never reaches a log, whatever the root level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agents.ingest.errors import BrokerUnavailable
from agents.ingest.payloads import Record
from agents.kafka_client import client_options, explain_unreachable
from agents.settings import PLAINTEXT, KafkaSecurity
from agents.worker import ensure_topics
from topics.catalogue import Catalogue, CatalogueSettings

log = logging.getLogger(__name__)
logging.getLogger("aiokafka.producer.producer").setLevel(logging.INFO)  # it logs values at DEBUG


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a record landed."""

    event_id: str
    topic: str
    partition: int
    offset: int


class Publisher:
    def __init__(
        self,
        bootstrap_servers: str,
        topics: CatalogueSettings,
        *,
        timeout_s: float = 5.0,
        reconnect_s: float = 2.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.topic_settings = topics
        tickets, interactions = (spec.name for spec in Catalogue.build(topics).inputs)
        self.topics = {"tickets": tickets, "interactions": interactions}
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.last_error = "not connected yet"

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect in the background; returns at once."""
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def wait_connected(self, timeout_s: float) -> None:
        """For callers that want the broker before going on (tests, the demo)."""
        if self._connecting is not None:
            await asyncio.wait_for(asyncio.shield(self._connecting), timeout_s)

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def publish(self, records: Sequence[Record]) -> list[Receipt]:
        """Send every record and wait for all acknowledgements; BrokerUnavailable otherwise."""
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable(f"not connected to Kafka: {self.last_error}")
        try:
            async with asyncio.timeout(self.timeout_s):
                futures = [
                    await producer.send(
                        self.topics[record.input],
                        record.value,
                        key=record.event.ticket_id.encode(),
                    )
                    for record in records
                ]
                metadata = [await future for future in futures]
        except (TimeoutError, KafkaError) as error:
            self.last_error = (
                f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            )
            raise BrokerUnavailable(
                f"Kafka did not acknowledge within {self.timeout_s}s ({self.last_error})"
            ) from None
        return [
            Receipt(record.event.id, meta.topic, meta.partition, meta.offset)
            for record, meta in zip(records, metadata, strict=True)
        ]

    async def ready(self, timeout_s: float = 2.0) -> str | None:
        """None when a broker answers a metadata request now; else why not."""
        producer = self._producer
        if producer is None:
            return f"not connected to Kafka: {self.last_error}"
        try:
            async with asyncio.timeout(timeout_s):
                await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError) as error:
            return f"Kafka did not answer a metadata request: {type(error).__name__}"
        return None

    async def _connect(self) -> None:
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                **client_options(self.security),
                acks="all",
                request_timeout_ms=int(self.timeout_s * 1000),
            )
            try:
                await producer.start()
                # Replicated as the worker would make them on a cluster of this size.
                brokers = max(len(producer.client.cluster.brokers()), 1)
                catalogue = Catalogue.build(self.topic_settings, brokers=brokers)
                created = await ensure_topics(
                    self.bootstrap_servers, catalogue, security=self.security
                )
            except (KafkaError, OSError, RuntimeError) as error:
                self.last_error = f"{type(error).__name__}: {error}"
                if why := await explain_unreachable(self.bootstrap_servers, self.security):
                    self.last_error = why  # aiokafka says only "Unable to bootstrap"
                log.warning("Kafka at %s: %s; retrying", self.bootstrap_servers, self.last_error)
                await producer.stop()
                await asyncio.sleep(self.reconnect_s)  # the retry interval of a background loop
                continue
            if created:
                log.info("created topics: %s", ", ".join(created))
            self._producer = producer
            self.last_error = ""
            log.info("connected to Kafka at %s", self.bootstrap_servers)
            return
