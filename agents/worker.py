"""Wires the engine into faust: one agent for the input topics and one per retry tier.

**Why acknowledgement is manual.** faust acknowledges an event when its agent moves on to the
next one, and commits acknowledged offsets on a timer. Our agents move on at once — they only
hand each record to the :class:`~agents.scheduler.Scheduler`, which runs thousands at a time —
so they iterate ``stream.noack()`` and acknowledge a record only once every step output, run
result, retry and dead letter it produced is acknowledged by the broker (acks=all). Before each
commit faust flushes its producer, so a committed offset never runs ahead of an outcome.

**How the commit guard works.** Records finish out of order, and faust's own commit rule is not
enough: it commits past an unacknowledged record at the head of a partition that has no
committed offset yet, or that sits right at the committed one (``Consumer._new_offset``,
faust#606). So the worker never acknowledges out of order: every record taken is registered in a
:class:`~agents.commits.CommitTracker`, and only the contiguous finished prefix of each
partition is acknowledged. Whatever faust then commits is covered by finished records, even on
a partition never committed, after a crash, a cancelled task or a rebalance.

**Rebalances.** faust's own repositioning after a rebalance is not enough: it drops records it
fetched during the rebalance and seeks back only partitions with a committed offset (above 0),
so a partition never committed could be left past records nobody saw (docs/reliability.md). So
the worker positions every assignment itself (:class:`~agents.positions.Positions`): its
partitions are paused in the Kafka client as they are assigned, each is moved to its committed
offset or, without one, to its beginning, and they are resumed once faust has finished the
rebalance. Records are taken only in that *open* generation: one of an older generation is
dropped (it is read again where the new generation starts; never a record of the current one,
which would leave a gap), one of the current generation that arrives early waits for the
opening. When partitions are revoked, their in-flight records are cancelled, and from the
moment a rebalance begins nothing is acknowledged (every partition is revoked and read again
from its committed offset). When partitions are assigned, the engine syncs the ledger before
any record runs.

**Retry tiers** each have their own agent, which waits until its head record's ``not-before``
time before admitting it: the wait holds neither fresh input nor any of the in-flight window,
and ends at once on stop or rebalance. No exception escapes an agent's own code: a record that
cannot even be taken in holds its partition's commits (and is logged) rather than being skipped,
and if faust's stream itself fails under an agent, every partition is held the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faust.streams import Stream
from faust.types import TP, EventT

from agents.engine import Engine, Prepared
from agents.kafka_client import client_options
from agents.outcomes import Inbound
from agents.positions import Positions
from agents.scheduler import Scheduler
from agents.settings import PLAINTEXT, KafkaSecurity
from topics import headers as h
from topics.catalogue import Catalogue
from topics.errors import HeaderError

log = logging.getLogger(__name__)

RecordEvent = EventT[Any]  # a consumed record: bytes key and value

# Records are taken from faust in small lists (at most TAKE_MAX, or what arrived within
# TAKE_LINGER_S) and admitted together, so that their first Salesforce calls coalesce; a list is
# not a batch: nothing waits for its other records. Retry tiers are not in a hurry: their loops
# wake less often while their topics are empty.
TAKE_MAX = 500
TAKE_LINGER_S = 0.005
TIER_LINGER_S = 0.5


def inbound(event: RecordEvent) -> Inbound:
    """A faust event as the engine's :class:`Inbound` (a null header value becomes ``b""``)."""
    message = event.message
    headers: Any = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    timestamp = message.timestamp
    return Inbound(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((str(k), bytes(v or b"")) for k, v in headers),
    )


class Worker:
    """The faust side of one worker: agents, acknowledgements, rebalances, stop."""

    def __init__(
        self, app: faust.App, engine: Engine, catalogue: Catalogue, *, max_in_flight: int
    ) -> None:
        self.app = app
        self.engine = engine
        self._take_max = min(TAKE_MAX, max_in_flight)
        self.scheduler: Scheduler[Prepared, RecordEvent] = Scheduler(
            engine.handle, self._acknowledge, max_in_flight=max_in_flight,
            observer=engine.observer,
        )  # fmt: skip
        self.positions = Positions(
            app, [spec.name for spec in (*catalogue.inputs, *catalogue.retry_tiers)]
        )
        # Set (and replaced) on every revocation and on stop: wakes the retry tiers' waits.
        self._interrupt = asyncio.Event()
        self.waiting = 0  # retry records waiting for their not-before time (not in flight)

        def topic(*names: str) -> faust.TopicT:
            return app.topic(
                *names, key_type=bytes, value_type=bytes, key_serializer="raw",
                value_serializer="raw",
            )  # fmt: skip

        inputs = topic(*(spec.name for spec in catalogue.inputs))
        app.agent(inputs, name="actionflows.inputs")(self._consume)
        for spec in catalogue.retry_tiers:
            app.agent(topic(spec.name), name=f"actionflows.{spec.name}")(self._consume_tier)
        # mode types a handler with mypy_extensions arguments that no function matches.
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    async def stop(self, grace_s: float) -> bool:
        """Take nothing more; let the records in flight finish for up to ``grace_s``. Returns
        whether they all did; those that did not stay unacknowledged, for redelivery."""
        self._interrupt.set()
        self.positions.stop()
        return await self.scheduler.drain(grace_s)

    async def _consume(self, stream: faust.StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # noack_take is the class's, not the protocol's
        with self._guard("input"):
            async for events in stream.noack_take(self._take_max, within=TAKE_LINGER_S):
                await self._take(events)

    async def _consume_tier(self, stream: faust.StreamT[Any]) -> None:
        assert isinstance(stream, Stream)
        with self._guard("retry tier"):
            async for events in stream.noack_take(self._take_max, within=TIER_LINGER_S):
                for event in events:
                    if await self._until_due(event):
                        await self._take([event])

    @contextlib.contextmanager
    def _guard(self, agent: str) -> Iterator[None]:
        """Our loops do not raise; if faust's stream under them does, records in its buffer
        may be lost untaken, and faust would restart the agent without seeking back. So every
        assigned partition commits no further until a rebalance or a restart redelivers them."""
        try:
            yield
        except Exception:
            log.exception(
                "the %s agent failed; no partition of this worker commits further until a "
                "rebalance or a restart", agent,
            )  # fmt: skip
            self.scheduler.hold(self.app.consumer.assignment())
            raise

    async def _take(self, events: Sequence[RecordEvent]) -> None:
        """Admit records to the scheduler once there is room for them. Never raises."""
        await self.scheduler.wait_for_room(len(events))
        for event in events:
            message = event.message
            try:
                generation = message.generation_id
                ready = self.positions.taking(generation) or await self.positions.ready(generation)
                if not ready:
                    continue  # of a revoked generation: read again where the next starts
                prepared = self.engine.prepare(inbound(event))
                self.scheduler.admit(message.tp, message.offset, prepared.ticket, prepared, event)
            except Exception:  # a defect: hold the partition's commits rather than skip it
                log.exception(
                    "could not take %s[%d]@%d; its partition commits no further until a "
                    "rebalance or a restart", message.topic, message.partition, message.offset,
                )  # fmt: skip
                self.scheduler.hold([message.tp])

    def _stale(self, event: RecordEvent) -> bool:
        return self.scheduler.stopping or self.positions.stale(event.message.generation_id)

    async def _until_due(self, event: RecordEvent) -> bool:
        """Wait until a retry record's not-before time; False if it went stale meanwhile."""
        try:
            retry = h.parse_retry_headers(inbound(event).headers)
        except HeaderError:
            return True  # the engine dead-letters it
        clock = self.engine.ports.clock
        self.waiting += 1
        try:
            while retry is not None and not self._stale(event):
                delay = retry.not_before_ms / 1000 - clock.now()
                if delay <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interrupt.wait(), delay)
        finally:
            self.waiting -= 1
        return not self._stale(event)

    async def _on_revoked(self, app: object, *args: Any, signal: object, **_: Any) -> None:
        revoked: set[TP] = set(args[0])
        self.positions.revoked()
        stopped = self.scheduler.revoke(revoked)
        self._interrupt.set()
        self._interrupt = asyncio.Event()
        if stopped:
            log.info("partitions revoked: %d records in flight stopped", stopped)

    async def _on_assigned(self, app: object, *args: Any, signal: object, **_: Any) -> None:
        self.positions.assigned(args[0])
        self.engine.resync()

    def _acknowledge(self, events: list[RecordEvent]) -> None:
        """Acknowledge finished records to faust, unless a rebalance has begun since they were
        taken: it revokes their partitions, which are read again from the committed offsets."""
        for event in events:
            if self.positions.is_open(event.message.generation_id):
                event.ack()


async def ensure_topics(
    bootstrap_servers: str, catalogue: Catalogue, *, security: KafkaSecurity = PLAINTEXT
) -> list[str]:
    """Create the catalogue's missing topics with their documented configs; return those made."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(security))
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


async def read_limits(
    bootstrap_servers: str, topics: Sequence[str], *, security: KafkaSecurity = PLAINTEXT
) -> dict[str, int]:
    """Each topic's ``max.message.bytes`` (its own setting, or the broker's default) as the
    broker reports it; topics it does not describe are left out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(security))
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
                for name in topics
            ]
        )
    finally:
        await admin.close()
    limits: dict[str, int] = {}
    for response in responses:
        for error_code, _message, _type, name, entries in response.resources:
            for entry in entries if error_code == 0 else ():
                if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                    limits[name] = int(entry[1])
    return limits
