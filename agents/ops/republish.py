"""Replaying a topic slice: republish it, or plan it dry. ``actionflows replay`` is the CLI.

A replay reads a slice (:mod:`agents.ops.slices`) with a group-less consumer and republishes the
selected records to the target topic (by default the topic itself): key, value and headers
unchanged, plus the ``actionflows.replay`` marker naming the replay. Republished events keep
their event ids, so the engine's ledger and the external-id upserts turn a second replay of the
same slice into no new Salesforce records. ``--dry-run`` republishes nothing: it plans every
selected event against the flows and the org (:mod:`agents.ops.dry_run`) and prints the writes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.ops.dry_run import DryRunner, DryRunTally, EventPlan
from agents.ops.slices import EventFilter, SliceSpec
from agents.ops.topic_io import Outgoing, Record, Sender, SliceReader
from pipeline.events import Event
from topics import headers as h
from topics.codecs import decode_event
from topics.errors import DecodeError

Progress = Callable[[int, int], None]  # (records read, offsets in the slice)


def new_replay_id() -> str:
    """``replay-20261124T101500Z-3f2a9c1e``: sortable by time, unique per run."""
    return f"replay-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    topic: str
    target: str | None = None  # None: republish into ``topic`` itself
    slice: SliceSpec = field(default_factory=SliceSpec)
    filter: EventFilter = field(default_factory=EventFilter)
    replay_id: str = field(default_factory=new_replay_id)

    @property
    def destination(self) -> str:
        return self.target or self.topic


@dataclass
class ReplayReport:
    replay_id: str
    topic: str
    target: str
    dry_run: bool
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    read: int = 0
    selected: int = 0
    republished: int = 0
    tally: DryRunTally = field(default_factory=DryRunTally)  # dry runs only


def republished(record: Record, request: ReplayRequest) -> Outgoing:
    """The copy of ``record`` a replay publishes: same key, value and headers, plus the marker.

    Into its own topic it keeps its partition (per-ticket order holds whatever partitioner the
    original producer used); into another topic the key chooses.
    """
    marker = h.replay_headers(h.ReplayMarker(request.replay_id, dry_run=False))
    same = request.destination == request.topic
    return Outgoing(
        request.destination,
        record.key,
        record.value or b"",
        h.replace_headers(record.headers, marker),
        record.partition if same else None,
    )


async def _selected(
    reader: SliceReader,
    request: ReplayRequest,
    report: ReplayReport,
    *,
    decode: bool,
    progress: Progress | None,
) -> AsyncIterator[tuple[Record, Event | None, DecodeError | None]]:
    report.ranges = dict(reader.ranges)
    total = reader.total
    async for record in reader.records():
        report.read += 1
        if progress is not None:
            progress(report.read, total)
        event, error = None, None
        if decode or request.filter.needs_event:
            try:
                event = decode_event(record.value or b"", topic=record.topic)
            except DecodeError as failure:
                error = failure
        if request.filter.matches(record.key, event):
            report.selected += 1
            yield record, event, error


async def replay(
    bootstrap: str, request: ReplayRequest, *, progress: Progress | None = None
) -> ReplayReport:
    """Republish the selected records; return once every one is acknowledged."""
    report = ReplayReport(request.replay_id, request.topic, request.destination, dry_run=False)
    async with (
        SliceReader(bootstrap, request.topic, request.slice) as reader,
        Sender(bootstrap) as sender,
    ):
        async for record, _, _ in _selected(
            reader, request, report, decode=False, progress=progress
        ):
            await sender.send(republished(record, request))
            report.republished += 1
        await sender.flush()
    return report


async def replay_dry_run(
    bootstrap: str,
    request: ReplayRequest,
    runner: DryRunner,
    *,
    on_event: Callable[[EventPlan], None] | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Plan every selected event; publish nothing, write nothing. ``on_event`` sees each plan."""
    report = ReplayReport(request.replay_id, request.topic, request.destination, dry_run=True)
    async with SliceReader(bootstrap, request.topic, request.slice) as reader:
        async for record, event, error in _selected(
            reader, request, report, decode=True, progress=progress
        ):
            if event is None:
                reason = error.code if error is not None else "undecodable"
                plan = EventPlan(record.partition, record.offset, None, error=reason)
            else:
                plan = await runner.plan(
                    record.partition, record.offset, event, record.topic, record.headers
                )
            report.tally.add(plan)
            if on_event is not None:
                on_event(plan)
    return report
