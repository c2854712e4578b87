"""``actionflows dlq list|show|redrive``: browse the dead-letter topic and redrive letters.

Reads use the group-less :class:`agents.ops.slices.SliceReader`, so browsing never moves the
worker's offsets. A redrive publishes the re-injected records first and its markers only once
those are acknowledged: a marker never claims a redrive that did not happen. If the tool dies in
between, the next redrive sends those letters again, which the ledger and the external-id upserts
make harmless.

:func:`scan`, :func:`fetch` and :func:`redrive` do the I/O; the redrive rules are pure, in
:mod:`agents.ops.letters`; the printing is in :mod:`agents.ops.output`. Usage, guarantees and
limits: ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.ops import output
from agents.ops.common import (
    EXPECTED_ERRORS,
    add_kafka_arguments,
    catalogue_from_env,
    describe,
    kafka_from,
)
from agents.ops.letters import (
    DeadLetter,
    LetterFilter,
    NotRedrivable,
    marker_key,
    marker_value,
    parse_marker,
    redrive_record,
)
from agents.ops.slices import (
    Outgoing,
    Record,
    Sender,
    SliceError,
    SliceReader,
    SliceSpec,
    ensure_compacted_topic,
    parse_position,
    parse_time,
    read_record,
    topic_partitions,
)
from agents.settings import PLAINTEXT, KafkaSecurity, KafkaSettings
from topics.catalogue import TopicRole
from topics.headers import Stage

__all__ = ["RedriveReport", "RedriveTopics", "fetch", "main", "read_markers", "redrive", "scan"]


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
    security: KafkaSecurity = PLAINTEXT,
) -> list[DeadLetter]:
    """The matching letters of a slice (default: all), oldest first, at most ``limit``."""
    wanted = letters or LetterFilter()
    found: list[DeadLetter] = []
    async with SliceReader(bootstrap, topic, spec or SliceSpec(), security=security) as reader:
        async for record in reader.records():
            letter = _letter(record)
            if wanted.matches(letter):
                found.append(letter)
    found.sort(key=lambda letter: (letter.timestamp_ms or 0, letter.partition, letter.offset))
    return found[:limit] if limit is not None else found


async def fetch(
    bootstrap: str,
    topic: str,
    positions: Iterable[tuple[int, int]],
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> tuple[list[DeadLetter], list[str]]:
    """The letters at these ``(partition, offset)`` positions, and the positions not found.

    One short read per position: a few positions far apart cost a few fetches, not a scan.
    """
    found: list[DeadLetter] = []
    missing: list[str] = []
    for partition, offset in sorted(set(positions)):
        record = await read_record(bootstrap, topic, partition, offset, security=security)
        if record is None:
            missing.append(f"{partition}:{offset}")
        else:
            found.append(_letter(record))
    return found, missing


async def read_markers(
    bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT
) -> dict[str, dict[str, Any]]:
    """Redrive markers by letter position; empty when no redrive ever ran."""
    if await topic_partitions(bootstrap, topic, security=security) is None:
        return {}
    markers: dict[str, dict[str, Any]] = {}
    async with SliceReader(bootstrap, topic, security=security) as reader:
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
    security: KafkaSecurity = PLAINTEXT,
) -> RedriveReport:
    """Re-inject ``letters`` (skipping those already redriven unless ``force``) and mark them."""
    report = RedriveReport(redrive_id or new_redrive_id(), dry_run)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    markers = {} if force else await read_markers(bootstrap, topics.markers, security=security)
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
    await ensure_compacted_topic(
        bootstrap, topics.markers, topics.replication_factor, security=security
    )
    async with Sender(bootstrap, security=security) as sender:
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


EXAMPLES = """\
examples:
  actionflows dlq list --since 1d --error-code FIELD_CUSTOM_VALIDATION_EXCEPTION
  actionflows dlq show 3:1207
  actionflows dlq redrive --flow create-lead --step create_lead --dry-run
  actionflows dlq redrive 3:1207 3:1210
"""


def _position(text: str) -> tuple[int, int]:
    try:
        return parse_position(text)
    except SliceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _filters(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("filters (repeat an option for any of several values)")
    group.add_argument(
        "--error-code",
        action="append",
        default=[],
        metavar="CODE",
        help="the reason code (decode.malformed_json, or malformed_json) or a Salesforce "
        "errorCode, e.g. DUPLICATES_DETECTED",
    )
    group.add_argument("--flow", action="append", default=[], metavar="NAME")
    group.add_argument("--step", action="append", default=[], metavar="ID")
    group.add_argument("--stage", action="append", default=[], choices=[s.value for s in Stage])
    group.add_argument(
        "--since",
        metavar="TIME",
        help="dead-lettered at or after: ISO 8601, or a duration ago (2h)",
    )
    group.add_argument("--until", metavar="TIME", help="dead-lettered before this time")
    group.add_argument("--limit", type=int, metavar="N", help="at most N letters, oldest first")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="actionflows dlq",
        description="Browse the dead-letter topic and redrive letters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_arguments(p)
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list dead letters")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines instead of text")
    show = sub.add_parser("show", help="one dead letter: context headers and payload")
    show.add_argument("position", type=_position, metavar="PARTITION:OFFSET")
    show.add_argument("--raw", action="store_true", help="show personal data in the payload")
    again = sub.add_parser("redrive", help="re-inject dead letters into their input topic")
    again.add_argument(
        "positions",
        nargs="*",
        type=_position,
        metavar="PARTITION:OFFSET",
        help="these letters (default: the letters the filters select)",
    )
    _filters(again)
    again.add_argument("--all", action="store_true", help="every letter (when no filter is given)")
    again.add_argument("--dry-run", action="store_true", help="list what would be redriven")
    again.add_argument("--force", action="store_true", help="redrive letters redriven before")
    return p


def _selection(
    p: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[LetterFilter, SliceSpec]:
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    now_ms = int(time.time() * 1000)
    try:
        spec = SliceSpec(
            since_ms=parse_time(args.since, now_ms=now_ms) if args.since else None,
            until_ms=parse_time(args.until, now_ms=now_ms) if args.until else None,
        )
    except SliceError as error:
        p.error(str(error))
    letters = LetterFilter(
        frozenset(args.error_code),
        frozenset(args.flow),
        frozenset(args.step),
        frozenset(args.stage),
    )
    return letters, spec


async def _selected(
    kafka: KafkaSettings, topics: RedriveTopics, args: Any, letters: LetterFilter, spec: SliceSpec
) -> list[DeadLetter]:
    """The letters the filters select, at most ``--limit``."""
    bootstrap, security = str(kafka.bootstrap_servers), kafka.security
    return await scan(
        bootstrap, topics.dead_letters, spec=spec, letters=letters, limit=args.limit,
        security=security,
    )  # fmt: skip


async def _list(
    kafka: KafkaSettings, topics: RedriveTopics, args: Any, letters: LetterFilter, spec: SliceSpec
) -> int:
    found = await _selected(kafka, topics, args, letters, spec)
    markers = await read_markers(
        str(kafka.bootstrap_servers), topics.markers, security=kafka.security
    )
    output.print_letters(found, markers, topics.dead_letters, as_json=args.json)
    return 0


async def _show(kafka: KafkaSettings, topics: RedriveTopics, args: Any) -> int:
    bootstrap, security = str(kafka.bootstrap_servers), kafka.security
    found, missing = await fetch(bootstrap, topics.dead_letters, [args.position], security=security)
    if missing:
        print(
            f"actionflows dlq: no dead letter at {missing[0]} on {topics.dead_letters}",
            file=sys.stderr,
        )
        return 1
    markers = await read_markers(bootstrap, topics.markers, security=security)
    output.print_letter(found[0], markers, topics.dead_letters, raw=args.raw)
    return 0


async def _redrive(
    kafka: KafkaSettings, topics: RedriveTopics, args: Any, letters: LetterFilter, spec: SliceSpec
) -> int:
    bootstrap, security = str(kafka.bootstrap_servers), kafka.security
    chosen: list[DeadLetter]
    if args.positions:
        chosen, missing = await fetch(
            bootstrap, topics.dead_letters, args.positions, security=security
        )
        chosen = [letter for letter in chosen if letters.matches(letter)]
        for position in missing:
            print(f"no dead letter at {position}: skipped", file=sys.stderr)
    else:
        chosen = await _selected(kafka, topics, args, letters, spec)
    report = await redrive(
        bootstrap, topics, chosen, dry_run=args.dry_run, force=args.force, security=security
    )
    output.print_redrive(report)
    return 1 if report.refused else 0


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    catalogue = catalogue_from_env(p)
    dead_letters = catalogue.one(TopicRole.DEAD_LETTERS)
    topics = RedriveTopics(
        dead_letters.name,
        catalogue.one(TopicRole.REDRIVE_MARKERS).name,
        dead_letters.replication_factor,
    )
    if args.command == "show":
        run = _show(kafka_from(p, args), topics, args)
    else:
        letters, spec = _selection(p, args)
        if args.command == "list":
            run = _list(kafka_from(p, args), topics, args, letters, spec)
        else:
            if args.positions and (spec.since_ms or spec.until_ms or args.limit or args.all):
                p.error(
                    "give PARTITION:OFFSET positions or --since/--until/--limit/--all, not both"
                )
            if not (args.positions or args.all or not letters.empty or spec != SliceSpec()):
                p.error(
                    "say which letters to redrive: PARTITION:OFFSET positions, filters, or --all"
                )
            run = _redrive(kafka_from(p, args), topics, args, letters, spec)
    try:
        return asyncio.run(run)
    except EXPECTED_ERRORS as error:
        print(f"actionflows dlq: {describe(error)}", file=sys.stderr)
        return 1
