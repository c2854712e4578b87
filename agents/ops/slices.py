"""Topic slices for the operator tools: which records, read without a group, published back.

A slice is "which partitions, from where, to where" of one topic, as an operator writes it:

- ``--from-offset N`` / ``--to-offset N`` apply to every selected partition; ``P:N`` applies to
  partition ``P`` only (repeatable, and it wins over a plain ``N``). Both bounds are inclusive:
  ``--from-offset 0:42 --to-offset 0:42`` is exactly one record.
- ``--since T`` is inclusive and ``--until T`` exclusive (``offsets_for_times`` semantics). ``T``
  is ISO 8601 (a naive time is UTC) or a duration back from now: ``90s``, ``30m``, ``2h``, ``1d``.
- The partitions are those given with ``--partition``, else those named in ``P:N`` bounds, else
  all of the topic's.

:func:`resolve_ranges` turns a :class:`SliceSpec` plus what the broker said (first, end and
time-lookup offsets, captured once at start) into half-open ``[start, end)`` ranges, so a
replay into the topic it reads still terminates. The spec, the ranges and :class:`EventFilter`
are pure.

:class:`SliceReader` reads a slice with a plain ``AIOKafkaConsumer(group_id=None)``: partitions
are assigned and seeked by hand, nothing is ever committed, and no consumer group is joined, so
the worker's group and offsets are untouched. :class:`Sender` publishes records at acks=all.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from agents.kafka_client import client_options
from agents.settings import PLAINTEXT, KafkaSecurity
from pipeline.events import Event
from topics.catalogue import parse_delay

_POSITION = re.compile(r"^(\d+):(\d+)$")


class SliceError(ValueError):
    """A slice or filter an operator wrote that cannot mean anything; the message says why."""


def parse_position(text: str) -> tuple[int, int]:
    """``"3:120"`` → ``(3, 120)``: a record's partition and offset."""
    match = _POSITION.match(text.strip())
    if match is None:
        raise SliceError(f"not a PARTITION:OFFSET position: {text!r} (expected e.g. 0:42)")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, slots=True)
class OffsetBound:
    """One offset bound: a value for every partition, and per-partition overrides."""

    default: int | None = None
    per_partition: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, values: Iterable[str]) -> OffsetBound | None:
        """``["100"]``, ``["0:100", "1:250"]`` or a mix; None when no value was given."""
        default: int | None = None
        per_partition: dict[int, int] = {}
        given = False
        for text in values:
            given = True
            if text.strip().isdigit():
                if default is not None:
                    raise SliceError(f"two offsets for every partition: {default} and {text}")
                default = int(text)
                continue
            partition, offset = parse_position(text)
            if partition in per_partition:
                raise SliceError(f"two offsets for partition {partition}")
            per_partition[partition] = offset
        return cls(default, per_partition) if given else None

    def for_partition(self, partition: int) -> int | None:
        return self.per_partition.get(partition, self.default)


def parse_time(text: str, *, now_ms: int) -> int:
    """ISO 8601 (naive means UTC) or a duration ago (``30m``) → epoch milliseconds."""
    value = text.strip()
    try:
        return now_ms - parse_delay(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SliceError(
            f"not a time: {text!r} (expected ISO 8601 such as 2026-11-24T10:00:00Z, "
            "or a duration ago such as 30m or 2h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SliceSpec:
    """What the operator asked for; :func:`resolve_ranges` makes it concrete."""

    partitions: tuple[int, ...] = ()
    from_offsets: OffsetBound | None = None
    to_offsets: OffsetBound | None = None  # inclusive
    since_ms: int | None = None  # inclusive
    until_ms: int | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.from_offsets is not None and self.since_ms is not None:
            raise SliceError("give a start offset or --since, not both")
        if self.to_offsets is not None and self.until_ms is not None:
            raise SliceError("give an end offset or --until, not both")
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.since_ms >= self.until_ms
        ):
            raise SliceError("--since must be earlier than --until")
        if any(p < 0 for p in self.partitions):
            raise SliceError("partitions are numbered from 0")

    def selected(self, available: Iterable[int]) -> tuple[int, ...]:
        """The partitions to read; raises naming any that the topic does not have."""
        existing = sorted(available)
        named = set(self.partitions)
        if not named:
            for bound in (self.from_offsets, self.to_offsets):
                if bound is not None:
                    named |= set(bound.per_partition)
        missing = sorted(named - set(existing))
        if missing:
            raise SliceError(
                f"no partition {', '.join(map(str, missing))} (the topic has {len(existing)})"
            )
        return tuple(sorted(named)) if named else tuple(existing)


def resolve_ranges(
    spec: SliceSpec,
    partitions: Iterable[int],
    first: Mapping[int, int],
    end: Mapping[int, int],
    since: Mapping[int, int | None] | None = None,
    until: Mapping[int, int | None] | None = None,
) -> dict[int, tuple[int, int]]:
    """Half-open ``[start, end)`` per partition, clamped to what the log still holds.

    ``first``/``end`` are the beginning and end offsets; ``since``/``until`` the results of
    ``offsets_for_times`` (None: no record that late, i.e. the end).
    """
    ranges: dict[int, tuple[int, int]] = {}
    for partition in partitions:
        low, high = first[partition], end[partition]
        start, stop = low, high
        if spec.from_offsets is not None:
            wanted = spec.from_offsets.for_partition(partition)
            start = low if wanted is None else wanted
        elif spec.since_ms is not None and since is not None:
            found = since.get(partition)
            start = high if found is None else found
        if spec.to_offsets is not None:
            wanted = spec.to_offsets.for_partition(partition)
            stop = high if wanted is None else wanted + 1
        elif spec.until_ms is not None and until is not None:
            found = until.get(partition)
            stop = high if found is None else found
        if start > stop and spec.from_offsets is not None and spec.to_offsets is not None:
            raise SliceError(
                f"partition {partition}: --from-offset {start} is after --to-offset {stop - 1}"
            )
        start = min(max(start, low), high)  # records before ``low`` are gone (retention)
        ranges[partition] = (start, min(max(stop, start), high))
    return ranges


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which records of a slice to take: any of these tickets, any of these event types.

    Types are shell-style patterns (``ticket.*``), as in flow triggers. A ticket matches the
    decoded event's ticket id or, for a record that does not decode, the record key. A type
    filter never matches a record that does not decode.
    """

    tickets: frozenset[str] = frozenset()
    types: tuple[str, ...] = ()

    @property
    def needs_event(self) -> bool:
        return bool(self.tickets or self.types)

    def matches(self, key: bytes | None, event: Event | None) -> bool:
        if self.tickets:
            ticket = event.ticket_id if event is not None else _text(key)
            if ticket not in self.tickets:
                return False
        return not self.types or (
            event is not None and any(fnmatchcase(event.type, t) for t in self.types)
        )


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


Record: TypeAlias = ConsumerRecord  # of bytes keys and values


async def topic_partitions(
    bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT
) -> list[int] | None:
    """The topic's partition numbers, or None when it does not exist.

    Asks for the metadata of every topic: asking for one by name lets a broker with
    ``auto.create.topics.enable`` create it, which a read-only tool must never do.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(security))
    await admin.start()
    try:
        described: list[dict[str, Any]] = await admin.describe_topics()
    finally:
        await admin.close()
    for item in described:
        if item["topic"] == topic:
            return sorted(p["partition"] for p in item["partitions"])
    return None


async def ensure_compacted_topic(
    bootstrap: str, topic: str, replication_factor: int, *, security: KafkaSecurity = PLAINTEXT
) -> None:
    """Create a one-partition compacted topic unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(security))
    await admin.start()
    try:
        new = NewTopic(
            topic,
            num_partitions=1,
            replication_factor=replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # an earlier run made it
            await admin.create_topics([new])
    finally:
        await admin.close()


@dataclass
class SliceReader:
    """``async with SliceReader(...) as reader: async for record in reader.records(): …``"""

    bootstrap: str
    topic: str
    spec: SliceSpec = field(default_factory=SliceSpec)
    idle_timeout_s: float = 30.0  # no progress for this long (broker gone): give up, loudly
    security: KafkaSecurity = PLAINTEXT
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict, init=False)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)

    @property
    def total(self) -> int:
        """Offsets in the slice: an upper bound of its records (compaction leaves gaps)."""
        return sum(end - start for start, end in self.ranges.values())

    async def __aenter__(self) -> SliceReader:
        available = await topic_partitions(self.bootstrap, self.topic, security=self.security)
        if available is None:
            raise SliceError(f"topic {self.topic!r} does not exist")
        partitions = self.spec.selected(available)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **client_options(self.security),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",  # never replay an aborted transaction's records
        )
        await consumer.start()
        self._consumer = consumer
        try:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            first = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
            end = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
            since = await self._times(tps, self.spec.since_ms)
            until = await self._times(tps, self.spec.until_ms)
            self.ranges = resolve_ranges(self.spec, partitions, first, end, since, until)
            for tp in tps:
                consumer.seek(tp, self.ranges[tp.partition][0])
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def _times(self, tps: list[TopicPartition], at_ms: int | None) -> dict[int, int | None]:
        if at_ms is None:
            return {}
        assert self._consumer is not None
        found = await self._consumer.offsets_for_times(dict.fromkeys(tps, at_ms))
        return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}

    async def records(self) -> AsyncIterator[Record]:
        """Every record of the slice, partition by partition in offset order."""
        consumer = self._consumer
        assert consumer is not None, "use SliceReader as an async context manager"
        pending = {
            TopicPartition(self.topic, p): end
            for p, (start, end) in self.ranges.items()
            if start < end
        }
        consumer.pause(*(tp for tp in consumer.assignment() if tp not in pending))
        last_progress = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for tp, items in batch.items():
                for record in items:
                    if record.offset < pending.get(tp, -1):
                        yield record
            for tp, end in list(pending.items()):
                if await consumer.position(tp) >= end:
                    del pending[tp]
                    consumer.pause(tp)  # fetch nothing past the slice
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self.idle_timeout_s:
                left = ", ".join(
                    [f"{tp.partition}@{await consumer.position(tp)}" for tp in pending]
                )
                raise TimeoutError(
                    f"no records from {self.topic!r} for {self.idle_timeout_s:.0f}s "
                    f"before the slice end (partition@position: {left})"
                )

    async def __aexit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def read_slice(
    bootstrap: str,
    topic: str,
    spec: SliceSpec | None = None,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> list[Record]:
    """Every record of a slice (by default the whole topic, up to its end as of this call)."""
    async with SliceReader(bootstrap, topic, spec or SliceSpec(), security=security) as reader:
        return [record async for record in reader.records()]


async def read_record(
    bootstrap: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> Record | None:
    """The one record at ``partition:offset``, or None when the log does not hold it."""
    here = OffsetBound(per_partition={partition: offset})
    async with SliceReader(
        bootstrap, topic, SliceSpec(from_offsets=here, to_offsets=here), security=security
    ) as reader:
        async for record in reader.records():
            return record if record.offset == offset else None
    return None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to publish; ``partition`` None lets the key choose it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int | None = None


class Sender:
    """An idempotent ``acks=all`` producer; :meth:`flush` returns once all is acknowledged."""

    def __init__(
        self, bootstrap: str, *, window: int = 1000, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **client_options(security),
            acks="all",
            enable_idempotence=True,
        )
        self._window = window
        self._pending: list[Any] = []

    async def __aenter__(self) -> Sender:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                await self.flush()
        finally:
            await self._producer.stop()

    async def send(self, record: Outgoing) -> None:
        """Queue one record; sends from one Sender keep their order within a partition."""
        future = await self._producer.send(
            record.topic,
            record.value,
            key=record.key,
            partition=record.partition,
            headers=record.headers,
        )
        self._pending.append(future)
        if len(self._pending) >= self._window:
            await self.flush()

    async def send_all(self, records: Sequence[Outgoing]) -> None:
        for record in records:
            await self.send(record)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            await future  # raises the first failure: the caller reports it, nothing is hidden
