"""``actionflows dlq list|show|redrive``: browse the dead-letter topic and redrive letters.

The reading and redriving are in :mod:`agents.ops.redrive` (``scan``, ``fetch``, ``redrive``), the
redrive rules in :mod:`agents.ops.letters`, the printing in :mod:`agents.ops.dlq_output`. Usage,
guarantees and limits: ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from agents.ops import dlq_output as output
from agents.ops.common import (
    EXPECTED_ERRORS,
    add_kafka_arguments,
    bootstrap_from,
    catalogue_from_env,
    describe,
)
from agents.ops.letters import DeadLetter, LetterFilter, redriven_topic
from agents.ops.redrive import RedriveReport, RedriveTopics, fetch, read_markers, redrive, scan
from agents.ops.slices import SliceError, SliceSpec, parse_position, parse_time
from topics.catalogue import TopicRole
from topics.headers import Stage

__all__ = ["RedriveReport", "RedriveTopics", "fetch", "main", "read_markers", "redrive", "scan"]

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
        help="the reason or Salesforce errorCode, e.g. malformed_json",
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


async def _list(
    bootstrap: str, topics: RedriveTopics, args: Any, letters: LetterFilter, spec: SliceSpec
) -> int:
    found = await scan(bootstrap, topics.dead_letters, spec=spec, letters=letters, limit=args.limit)
    markers = await read_markers(bootstrap, topics.markers)
    output.print_letters(found, markers, topics.dead_letters, as_json=args.json)
    return 0


async def _show(bootstrap: str, topics: RedriveTopics, args: Any) -> int:
    found, missing = await fetch(bootstrap, topics.dead_letters, [args.position])
    if missing:
        print(
            f"actionflows dlq: no dead letter at {missing[0]} on {topics.dead_letters}",
            file=sys.stderr,
        )
        return 1
    markers = await read_markers(bootstrap, topics.markers)
    output.print_letter(found[0], markers, topics.dead_letters, raw=args.raw)
    return 0


async def _redrive(
    bootstrap: str, topics: RedriveTopics, args: Any, letters: LetterFilter, spec: SliceSpec
) -> int:
    chosen: list[DeadLetter]
    if args.positions:
        chosen, missing = await fetch(bootstrap, topics.dead_letters, args.positions)
        chosen = [letter for letter in chosen if letters.matches(letter)]
        for position in missing:
            print(f"no dead letter at {position}: skipped", file=sys.stderr)
    else:
        chosen = await scan(
            bootstrap, topics.dead_letters, spec=spec, letters=letters, limit=args.limit
        )
    report = await redrive(bootstrap, topics, chosen, dry_run=args.dry_run, force=args.force)
    output.print_redrive(report)
    return 1 if report.refused else 0


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    catalogue = catalogue_from_env(p)
    dead_letters = catalogue.one(TopicRole.DEAD_LETTERS)
    topics = RedriveTopics(
        dead_letters.name, redriven_topic(catalogue), dead_letters.replication_factor
    )
    if args.command == "show":
        run = _show(bootstrap_from(p, args), topics, args)
    else:
        letters, spec = _selection(p, args)
        if args.command == "list":
            run = _list(bootstrap_from(p, args), topics, args, letters, spec)
        else:
            if args.positions and (spec.since_ms or spec.until_ms or args.limit or args.all):
                p.error(
                    "give PARTITION:OFFSET positions or --since/--until/--limit/--all, not both"
                )
            if not (args.positions or args.all or not letters.empty or spec != SliceSpec()):
                p.error(
                    "say which letters to redrive: PARTITION:OFFSET positions, filters, or --all"
                )
            run = _redrive(bootstrap_from(p, args), topics, args, letters, spec)
    try:
        return asyncio.run(run)
    except EXPECTED_ERRORS as error:
        print(f"actionflows dlq: {describe(error)}", file=sys.stderr)
        return 1
