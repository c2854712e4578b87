"""Reading the dead-letter topic and redriving letters: the I/O behind ``actionflows dlq``.

Reads use the group-less :class:`agents.ops.topic_io.SliceReader`, so browsing never moves the
worker's offsets. A redrive publishes the re-injected records first and its markers only once
those are acknowledged: a marker never claims a redrive that did not happen. If the tool dies in
between, the next redrive sends those letters again, which the ledger and the external-id upserts
make harmless (see :mod:`agents.ops.letters`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.ops.letters import (
    DeadLetter,
    LetterFilter,
    NotRedrivable,
    marker_key,
    marker_value,
    parse_marker,
    redrive_record,
)
from agents.ops.slices import SliceSpec
from agents.ops.topic_io import (
    Outgoing,
    Record,
    Sender,
    SliceReader,
    ensure_compacted_topic,
    read_record,
    topic_partitions,
)


def new_redrive_id() -> str:
    return f"redrive-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _letter(record: Record) -> DeadLetter:
    return DeadLetter.of(
        record.partition, record.offset, record.timestamp, record.key, record.value, record.headers
    )


async def scan(
    bootstrap: str,
    topic: str,
    *,
    spec: SliceSpec | None = None,
    letters: LetterFilter | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """The matching letters of a slice (default: all), oldest first, at most ``limit``."""
    wanted = letters or LetterFilter()
    found: list[DeadLetter] = []
    async with SliceReader(bootstrap, topic, spec or SliceSpec()) as reader:
        async for record in reader.records():
            letter = _letter(record)
            if wanted.matches(letter):
                found.append(letter)
    found.sort(key=lambda letter: (letter.timestamp_ms or 0, letter.partition, letter.offset))
    return found[:limit] if limit is not None else found


async def fetch(
    bootstrap: str, topic: str, positions: Iterable[tuple[int, int]]
) -> tuple[list[DeadLetter], list[str]]:
    """The letters at these ``(partition, offset)`` positions, and the positions not found.

    One short read per position: a few positions far apart cost a few fetches, not a scan.
    """
    found: list[DeadLetter] = []
    missing: list[str] = []
    for partition, offset in sorted(set(positions)):
        record = await read_record(bootstrap, topic, partition, offset)
        if record is None:
            missing.append(f"{partition}:{offset}")
        else:
            found.append(_letter(record))
    return found, missing


async def read_markers(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """Redrive markers by letter position; empty when no redrive ever ran."""
    if await topic_partitions(bootstrap, topic) is None:
        return {}
    markers: dict[str, dict[str, Any]] = {}
    async with SliceReader(bootstrap, topic) as reader:
        async for record in reader.records():
            key = (record.key or b"").decode("utf-8", errors="replace")
            marker = parse_marker(record.value)
            if marker is None:
                markers.pop(key, None)  # a tombstone forgets the redrive
            else:
                markers[key] = marker
    return markers


@dataclass
class RedriveReport:
    redrive_id: str
    dry_run: bool
    redriven: list[tuple[DeadLetter, Outgoing]] = field(default_factory=list)
    already: list[tuple[DeadLetter, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RedriveTopics:
    dead_letters: str
    markers: str  # the compacted <prefix>.dlq-redriven
    replication_factor: int = 1


async def redrive(
    bootstrap: str,
    topics: RedriveTopics,
    letters: Iterable[DeadLetter],
    *,
    dry_run: bool = False,
    force: bool = False,
    redrive_id: str | None = None,
    now_ms: int | None = None,
) -> RedriveReport:
    """Re-inject ``letters`` (skipping those already redriven unless ``force``) and mark them."""
    report = RedriveReport(redrive_id or new_redrive_id(), dry_run)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    markers = {} if force else await read_markers(bootstrap, topics.markers)
    for letter in letters:
        if letter.position in markers:
            report.already.append((letter, markers[letter.position]))
            continue
        try:
            sent = redrive_record(
                letter,
                dead_letter_topic=topics.dead_letters,
                redrive_id=report.redrive_id,
                now_ms=now,
            )
        except NotRedrivable as error:
            report.refused.append((letter, str(error)))
            continue
        report.redriven.append((letter, sent))
    if dry_run or not report.redriven:
        return report
    await ensure_compacted_topic(bootstrap, topics.markers, topics.replication_factor)
    async with Sender(bootstrap) as sender:
        await sender.send_all([sent for _, sent in report.redriven])  # acknowledged first
        await sender.send_all(
            [
                Outgoing(
                    topics.markers,
                    marker_key(letter),
                    marker_value(letter, sent, redrive_id=report.redrive_id, now_ms=now),
                    [],
                )
                for letter, sent in report.redriven
            ]
        )
    return report
