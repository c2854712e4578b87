"""The durable step ledger: a compacted Kafka topic, read into memory, written through.

Every completed step is recorded before the run moves on: :meth:`KafkaLedger.put` returns only
once the entry is acknowledged by the broker (acks=all), so it is durable before the input
offset can be committed, and only then is it in memory. Puts from concurrent runs are coalesced:
those that arrive while a write is in flight go out together in the next one (one produce, one
wait), so a thousand runs do not make a thousand round trips. A put that fails on a transient
fault is retried with backoff; one the broker refuses for good raises :class:`LedgerError`.

A worker reads the whole topic at start, then tails it, so entries written by other workers
(before a rebalance moved a partition here) are seen too. :meth:`sync` waits until the tail has
caught up with the topic's end, with a timeout; concurrent syncs share one round. The tail is
supervised: if it fails it is restarted with backoff, and :meth:`status` says whether it is
alive, synced, how many entries it holds and the last error (for health checks).

Key: ``<run key>/<step id>`` (UTF-8). Value: the :class:`~pipeline.ledger.StepRecord` as JSON,
or null (a tombstone) to forget it. The topic is compacted and also deletes entries older than
its retention (30 days by default, like the dead letters, so a redrive still finds them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from agents.delivery import backoff, produce_all, refused
from agents.kafka_client import FETCH_MAX_WAIT_MS, client_options
from agents.settings import PLAINTEXT, Compression, KafkaSecurity
from pipeline.ledger import StepRecord

log = logging.getLogger(__name__)

SCHEMA = "actionflows.ledger-entry/1"


class LedgerError(Exception):
    """The ledger cannot do what was asked: a sync timed out, or the broker refused an entry."""


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """What a health check needs to know of the ledger."""

    alive: bool  # the tail is reading (not failed and waiting to restart)
    synced: bool  # the last sync completed (and the tail has not failed since)
    entries: int
    last_error: str | None


def encode(record: StepRecord) -> bytes:
    return orjson.dumps({
        "schema": SCHEMA, "status": record.status, "outputs": record.outputs,
        "salesforce_id": record.salesforce_id, "attempts": record.attempts,
    }, option=orjson.OPT_NON_STR_KEYS)  # fmt: skip


def decode(value: bytes) -> StepRecord:
    data: dict[str, Any] = orjson.loads(value)
    return StepRecord(
        status=data["status"], outputs=data.get("outputs") or {},
        salesforce_id=data.get("salesforce_id"), attempts=data.get("attempts") or 0,
    )  # fmt: skip


@dataclass(slots=True)
class _Put:
    key: str
    record: StepRecord
    done: asyncio.Future[None]


class KafkaLedger:
    """The :class:`~pipeline.ledger.Ledger` port over a compacted topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        sync_timeout_s: float = 30.0,
        security: KafkaSecurity = PLAINTEXT,
        compression: Compression = None,
    ) -> None:
        self.topic = topic
        self.sync_timeout_s = sync_timeout_s
        self._records: dict[str, StepRecord] = {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, **client_options(security),
            acks="all", enable_idempotence=True, linger_ms=1,
            # Concurrent runs' puts share a batch; compressed as the worker's outcomes are
            # (ACTIONFLOWS_COMPRESSION, agents/settings.py).
            compression_type=compression, max_batch_size=262_144,
        )  # fmt: skip
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, **client_options(security), group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )  # fmt: skip
        # Asks for end offsets only: the tail's long-polling fetch would delay its requests.
        self._offsets = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, **client_options(security), group_id=None
        )
        self._tail: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        # Offsets this instance wrote that the tail has not read back yet: already in memory,
        # so sync() need not wait for them.
        self._own: dict[TopicPartition, set[int]] = {}
        self._progress = asyncio.Condition()
        self._outbox: list[_Put] = []
        self._writer: asyncio.Task[None] | None = None
        self._next_sync: asyncio.Future[None] | None = None  # the round not started yet
        self._syncer: asyncio.Task[None] | None = None
        self._alive = False
        self._synced = False
        self._last_error: str | None = None

    async def start(self) -> None:
        """Connect, read the topic to its end, and keep tailing it."""
        await self._producer.start()
        await self._consumer.start()
        await self._offsets.start()
        partitions = await self._partitions()
        if not partitions:
            await self._offsets.stop()
            await self._consumer.stop()
            await self._producer.stop()
            raise RuntimeError(f"ledger topic {self.topic!r} does not exist")
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)
        self._tail = asyncio.create_task(self._supervise(), name="ledger-tail")
        await self.sync()
        log.info("ledger %s loaded: %d entries", self.topic, len(self._records))

    async def _partitions(self) -> set[int]:
        """The topic's partitions (the producer waits for the metadata of a new topic)."""
        try:
            return set(await self._producer.partitions_for(self.topic))
        except KafkaError:
            return set()

    async def stop(self) -> None:
        for task in (self._tail, self._writer, self._syncer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._offsets.stop()
        await self._consumer.stop()
        await self._producer.stop()

    def status(self) -> LedgerStatus:
        return LedgerStatus(self._alive, self._synced, len(self._records), self._last_error)

    async def get(self, run_key: str, step_id: str) -> StepRecord | None:
        return self._records.get(f"{run_key}/{step_id}")

    async def put(self, run_key: str, step_id: str, record: StepRecord) -> None:
        """Return once the entry is durable; it is readable from then on."""
        put = _Put(f"{run_key}/{step_id}", record, asyncio.get_running_loop().create_future())
        self._outbox.append(put)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="ledger-writer")
        # Shielded: a cancelled run must not cancel the write other runs share.
        await asyncio.shield(put.done)

    async def sync(self) -> None:
        """Return once every entry written before this call has been read into memory; raise
        :class:`LedgerError` if that takes longer than ``sync_timeout_s``."""
        if self._next_sync is None:
            self._next_sync = asyncio.get_running_loop().create_future()
            if self._syncer is None:
                self._syncer = asyncio.create_task(self._sync_rounds(), name="ledger-sync")
        await asyncio.shield(self._next_sync)

    def __len__(self) -> int:
        return len(self._records)

    async def _write(self) -> None:
        """Send what the outbox holds, together, until it is empty."""
        try:
            failures = 0
            while self._outbox:
                puts, self._outbox = self._outbox, []
                results = await self._send(puts)
                failed = False
                for put, result in zip(puts, results, strict=True):
                    if isinstance(result, tuple):
                        self._records[put.key] = put.record
                        self._own.setdefault(TopicPartition(self.topic, result[0]), set()).add(
                            result[1]
                        )
                        put.done.set_result(None)
                    elif isinstance(result, LedgerError):
                        put.done.set_exception(result)
                    elif refused(result):
                        put.done.set_exception(LedgerError(f"{put.key} refused: {result!r}"))
                    else:  # a transient fault: this entry goes again with the next ones
                        failed = True
                        self._outbox.append(put)
                        self._last_error = f"write: {result!r}"
                if failed:
                    failures += 1
                    delay = backoff(failures)
                    log.warning(
                        "ledger write failed (%s); retrying in %.1fs", self._last_error, delay
                    )
                    await asyncio.sleep(delay)
                else:
                    failures = 0
        finally:
            self._writer = None

    async def _send(self, puts: list[_Put]) -> list[tuple[int, int] | BaseException]:
        """One produce for all ``puts``: each one's (partition, offset), or its error."""
        encoded: list[bytes | LedgerError] = []
        for put in puts:
            try:
                encoded.append(encode(put.record))
            except TypeError as error:  # orjson: a value JSON cannot hold
                encoded.append(LedgerError(f"{put.key} cannot be encoded: {error}"))
        sendable = [(p, v) for p, v in zip(puts, encoded, strict=True) if isinstance(v, bytes)]
        acks = iter(
            await produce_all(
                partial(self._producer.send, self.topic, value, key=put.key.encode())
                for put, value in sendable
            )
        )
        results: list[tuple[int, int] | BaseException] = []
        for value in encoded:
            outcome = value if isinstance(value, LedgerError) else next(acks)
            results.append(
                outcome
                if isinstance(outcome, BaseException)
                else (outcome.partition, outcome.offset)
            )
        return results

    async def _sync_rounds(self) -> None:
        """Run sync rounds while callers wait for one: each round serves every caller that
        arrived before it started."""
        try:
            while self._next_sync is not None:
                waiting, self._next_sync = self._next_sync, None
                try:
                    await asyncio.wait_for(self._sync_once(), self.sync_timeout_s)
                except Exception as error:  # a timeout or the broker: the callers are told
                    self._synced = False
                    self._last_error = f"sync: {error!r}"
                    waiting.set_exception(LedgerError(f"ledger sync failed: {error!r}"))
                else:
                    self._synced = True
                    waiting.set_result(None)
        finally:
            self._syncer = None

    def _apply(self, raw_key: bytes | None, value: bytes | None) -> None:
        key = raw_key.decode("utf-8", "replace") if raw_key else ""
        if value is None:
            self._records.pop(key, None)
            return
        try:
            self._records[key] = decode(value)
        except Exception as error:  # not written by this service: skip it, keep reading
            log.warning("ledger entry %r skipped: %r", key[:200], error)

    async def _sync_once(self) -> None:
        ends = await self._offsets.end_offsets(list(self._consumer.assignment()))

        def caught_up(tp: TopicPartition, end: int) -> bool:
            own = self._own.get(tp, set())
            return all(offset in own for offset in range(self._positions.get(tp, 0), end))

        async with self._progress:
            await self._progress.wait_for(lambda: all(caught_up(*item) for item in ends.items()))

    async def _supervise(self) -> None:
        """Keep the tail reading: restart it with backoff when it fails."""
        failures = 0
        while True:
            try:
                await self._follow()
            except Exception as error:  # the broker: log, wait, read on from where it was
                failures = failures + 1 if not self._alive else 1
                self._alive = self._synced = False
                self._last_error = f"tail: {error!r}"
                delay = backoff(failures)
                log.warning("ledger tail failed (%r); restarting in %.1fs", error, delay)
                await asyncio.sleep(delay)

    async def _follow(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            self._alive = True
            for records in batch.values():
                for record in records:
                    self._apply(record.key, record.value)
            async with self._progress:
                for partition in self._consumer.assignment():
                    position = await self._consumer.position(partition)
                    self._positions[partition] = position
                    own = self._own.get(partition)
                    if own:
                        own.difference_update([o for o in own if o < position])
                self._progress.notify_all()
