"""The indexer: the run-results, step-outputs and dead-letters topics into the history store.

It reads every partition of the three topics without a consumer group (``group_id=None``,
assigned by hand), so it never disturbs the worker's group, and keeps its own positions in the
store, in the same transaction as the rows: stopped anywhere, it resumes where it was. Rows
expire when their records leave the topics: the retention is read from the broker
(``retention.ms`` of each topic; the catalogue's value if the broker does not say), and expired
rows are deleted every ``expire_every_s``.

:meth:`Indexer.rebuild` empties the store and reads the topics again from their first offset:
the history is a cache of the topics, and can be thrown away at any time.

:class:`History` runs the (synchronous) store on one thread of its own, so neither indexing nor
queries block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from agents.history.rows import Row, Source, Unreadable, letter_row, run_row, step_row
from agents.history.store import Indexed, Store
from agents.kafka_client import client_options
from agents.ops.slices import topic_partitions
from agents.settings import PLAINTEXT, KafkaSecurity
from topics.catalogue import Catalogue, TopicRole

log = logging.getLogger(__name__)

T = TypeVar("T")

ROLES = (TopicRole.RUN_RESULTS, TopicRole.STEP_OUTPUTS, TopicRole.DEAD_LETTERS)
_PARSERS: dict[TopicRole, Callable[[Source], Row]] = {
    TopicRole.RUN_RESULTS: run_row,
    TopicRole.STEP_OUTPUTS: step_row,
    TopicRole.DEAD_LETTERS: letter_row,
}


class History:
    """The store behind one thread: every call runs there, one at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.store.close()


class Indexer:
    """Keeps the store up to date with the output topics of one catalogue."""

    def __init__(
        self,
        history: History,
        bootstrap_servers: str,
        catalogue: Catalogue,
        *,
        expire_every_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.history = history
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.roles = {catalogue.one(role).name: role for role in ROLES}
        self.retention_ms: dict[str, int | None] = {
            catalogue.one(role).name: catalogue.one(role).retention_ms for role in ROLES
        }
        self.expire_every_s = expire_every_s
        self._clock = clock
        self.positions: dict[tuple[str, int], int] = {}  # what the store holds, next offsets
        self.indexed: dict[str, int] = dict.fromkeys(self.roles, 0)
        self.unreadable: dict[str, int] = dict.fromkeys(self.roles, 0)
        self.rebuilds = 0
        self.last_error: str | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._rebuild = asyncio.Event()
        self._rebuilt = asyncio.Event()
        self._progress = asyncio.Condition()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the retention, assign every partition, seek to the stored positions, index."""
        bootstrap, security = self.bootstrap_servers, self.security
        self.retention_ms.update(
            await topic_retention(bootstrap, list(self.roles), security=security)
        )
        partitions = {
            topic: await topic_partitions(bootstrap, topic, security=security)
            for topic in self.roles
        }
        missing = sorted(topic for topic, found in partitions.items() if found is None)
        if missing:
            raise RuntimeError(
                f"topics {', '.join(missing)} do not exist (the worker creates them)"
            )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **client_options(security),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            assigned = [
                TopicPartition(topic, partition)
                for topic, found in partitions.items()
                for partition in found or ()
            ]
            consumer.assign(assigned)
            self.positions = await self.history.call(self.history.store.positions)
            await self._seek(consumer, assigned)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(), name="history-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _seek(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        fresh = []
        for tp in assigned:
            position = self.positions.get((tp.topic, tp.partition))
            if position is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, position)
        if fresh:
            await consumer.seek_to_beginning(*fresh)

    # --- indexing -------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Empty the store and index the topics again from their first offsets (soon: the
        indexing task does it between two batches)."""
        self._rebuilt.clear()
        self._rebuild.set()

    async def rebuilt(self) -> None:
        """Return once the last rebuild asked for has started over."""
        await self._rebuilt.wait()

    async def _follow(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        next_expiry = 0.0
        try:
            while True:
                if self._rebuild.is_set():
                    self._rebuild.clear()
                    await self.history.call(self.history.store.clear)
                    self.positions = {}
                    await consumer.seek_to_beginning(*consumer.assignment())
                    self.rebuilds += 1
                    self._rebuilt.set()
                    log.info("history: rebuilding from the topics")
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                items = [self._indexed(r) for records in batch.values() for r in records]
                if items:
                    await self.history.call(self.history.store.apply, items)
                now = self._clock()
                if now >= next_expiry:
                    expired = await self.history.call(self.history.store.expire, int(now * 1000))
                    if expired:
                        log.info("history: %d rows expired with their records", expired)
                    next_expiry = now + self.expire_every_s
                # Published last, so whoever sees a position sees the batch and its expiry.
                for item in items:
                    self.positions[(item.topic, item.partition)] = item.offset + 1
                async with self._progress:
                    self._progress.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the task ends; readiness and /api/index report why
            self.last_error = repr(error)
            log.exception("history: the indexer stopped")
            raise

    def _indexed(self, record: Any) -> Indexed:
        source = Source(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            tuple((str(k), bytes(v)) for k, v in record.headers or ()),
        )
        item = indexed(source, self.roles[record.topic], self.retention_ms.get(record.topic))
        if item.row is None:
            self.unreadable[record.topic] += 1
        else:
            self.indexed[record.topic] += 1
        return item

    async def caught_up(self) -> bool:
        """Whether every record on the topics now has been indexed."""
        if self._consumer is None:
            return False
        assigned = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(assigned)
        starts = await self._consumer.beginning_offsets(assigned)
        return all(
            self.positions.get((tp.topic, tp.partition), starts[tp]) >= end
            for tp, end in ends.items()
        )

    async def wait_caught_up(self) -> None:
        """Return once :meth:`caught_up` (wrap it in a timeout)."""
        while not await self.caught_up():
            if not self.alive:
                raise RuntimeError(f"the indexer stopped: {self.last_error}")
            async with self._progress:
                await self._progress.wait()

    def status(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "last_error": self.last_error,
            "rebuilds": self.rebuilds,
            "topics": {
                topic: {
                    "role": str(role),
                    "retention_ms": self.retention_ms.get(topic),
                    "indexed": self.indexed[topic],
                    "unreadable": self.unreadable[topic],
                    "positions": {
                        str(partition): offset
                        for (name, partition), offset in sorted(self.positions.items())
                        if name == topic
                    },
                }
                for topic, role in self.roles.items()
            },
        }


def indexed(source: Source, role: TopicRole, retention_ms: int | None) -> Indexed:
    """The row of one record, expiring with it; an unreadable record keeps only its position."""
    row = _PARSERS[role](source)
    if isinstance(row, Unreadable):
        log.warning("history: skipping an unreadable record: %s", row.reason)
        return Indexed(source.topic, source.partition, source.offset, None, None)
    expires = source.timestamp_ms + retention_ms if retention_ms is not None else None
    return Indexed(source.topic, source.partition, source.offset, row, expires)


async def topic_retention(
    bootstrap_servers: str, topics: list[str], *, security: KafkaSecurity = PLAINTEXT
) -> dict[str, int | None]:
    """``retention.ms`` of each topic as the broker has it (None: kept forever); topics the
    broker does not describe are left out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(security))
    found: dict[str, int | None] = {}
    try:
        await admin.start()
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    if entry["config_names"] == "retention.ms":
                        value = int(entry["config_value"])
                        found[resource["resource_name"]] = value if value >= 0 else None
    except KafkaError as error:
        log.warning("history: cannot read the topics' retention (%r); using the catalogue's", error)
    finally:
        await admin.close()
    return found
