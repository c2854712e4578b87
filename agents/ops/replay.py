"""``actionflows replay``: republish a slice of an input topic, or show what it would do.

A replay reads a slice (:mod:`agents.ops.slices`) with a group-less consumer and republishes the
selected records to the target topic (by default the topic itself): key, value and headers
unchanged, plus the ``actionflows.replay`` marker naming the replay. Republished events keep
their event ids, so the engine's ledger and the external-id upserts turn a second replay of the
same slice into no new Salesforce records. ``--dry-run`` republishes nothing: it plans every
selected event against the flows, the org and the worker's ledger (:mod:`agents.ops.dry_run`)
and prints the writes, and the steps the ledger would have reused.

:func:`replay` and :func:`replay_dry_run` do the work; :func:`main` parses the command line,
connects the dry run to Salesforce, shows progress on stderr and prints the result
(:mod:`agents.ops.output`). Usage, guarantees and limits: ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.ledger import KafkaLedger
from agents.ops import output
from agents.ops.common import (
    EXPECTED_ERRORS,
    add_kafka_arguments,
    catalogue_from_env,
    describe,
    kafka_from,
)
from agents.ops.dry_run import DryRunner, DryRunTally, EventPlan
from agents.ops.slices import (
    EventFilter,
    OffsetBound,
    Outgoing,
    Record,
    Sender,
    SliceError,
    SliceReader,
    SliceSpec,
    parse_time,
)
from agents.service import DEFAULT_EXTERNAL_ID_FIELD, OBJECTS_WITH_KEYS
from agents.settings import PLAINTEXT, KafkaSecurity, KafkaSettings
from pipeline.events import Event
from pipeline.ledger import InMemoryLedger, Ledger
from pipeline.loader import load_flows
from pipeline.runner import Ports
from salesforce.client import SalesforceClient
from salesforce.consistency import ConsistentGateway
from salesforce.settings import ConnectionSettings, load_settings
from topics import headers as h
from topics.catalogue import Catalogue, TopicRole
from topics.codecs import decode_event
from topics.errors import DecodeError

__all__ = ["ReplayReport", "ReplayRequest", "main", "replay", "replay_dry_run", "republished"]


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
    bootstrap: str,
    request: ReplayRequest,
    *,
    progress: Progress | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> ReplayReport:
    """Republish the selected records; return once every one is acknowledged."""
    report = ReplayReport(request.replay_id, request.topic, request.destination, dry_run=False)
    async with (
        SliceReader(bootstrap, request.topic, request.slice, security=security) as reader,
        Sender(bootstrap, security=security) as sender,
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
    security: KafkaSecurity = PLAINTEXT,
) -> ReplayReport:
    """Plan every selected event; publish nothing, write nothing. ``on_event`` sees each plan."""
    report = ReplayReport(request.replay_id, request.topic, request.destination, dry_run=True)
    async with SliceReader(bootstrap, request.topic, request.slice, security=security) as reader:
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


EXAMPLES = """\
examples:
  actionflows replay --since 2026-11-24T09:00Z --until 2026-11-24T10:00Z --dry-run
  actionflows replay --from-offset 0:1200 --to-offset 0:1450 --type 'ticket.*'
  actionflows replay --since 2h --ticket 4711 --ticket 4712
  actionflows replay --all --target actionflows.tickets-replay
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="actionflows replay",
        description="Republish a slice of an input topic for reprocessing, or (--dry-run) show "
        "the Salesforce writes it would make.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kafka_arguments(p)
    p.add_argument("--topic", help="the topic to read (default: the tickets input topic)")
    p.add_argument("--target", help="where to republish (default: the topic read)")
    where = p.add_argument_group("slice (offsets inclusive; --since inclusive, --until exclusive)")
    where.add_argument(
        "--partition",
        type=int,
        action="append",
        default=[],
        metavar="P",
        help="read only this partition (repeatable; default: all)",
    )
    start = where.add_mutually_exclusive_group()
    start.add_argument(
        "--from-offset",
        action="append",
        metavar="N|P:N",
        help="first offset, for every partition or for partition P (repeatable)",
    )
    start.add_argument("--since", metavar="TIME", help="ISO 8601 time, or a duration ago (2h)")
    end = where.add_mutually_exclusive_group()
    end.add_argument(
        "--to-offset",
        action="append",
        metavar="N|P:N",
        help="last offset, for every partition or for partition P (repeatable)",
    )
    end.add_argument("--until", metavar="TIME", help="ISO 8601 time, or a duration ago (30m)")
    where.add_argument(
        "--all",
        action="store_true",
        help="replay the whole topic (required when no slice or filter is given)",
    )
    which = p.add_argument_group("filters")
    which.add_argument(
        "--ticket",
        action="append",
        default=[],
        metavar="ID",
        help="only this ticket's events (repeatable)",
    )
    which.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="EVENT_TYPE",
        help="only events of this type; shell patterns such as 'ticket.*' (repeatable)",
    )
    dry = p.add_argument_group("dry run")
    dry.add_argument(
        "--dry-run",
        action="store_true",
        help="republish nothing: print the Salesforce writes the events would make",
    )
    dry.add_argument(
        "--flows", type=Path, default=Path("flows"), help="flow folder (default: flows)"
    )
    dry.add_argument("--connection", help="the Salesforce connection (default: the default)")
    dry.add_argument("--login-url", help="override the connection's login URL (e.g. an emulator)")
    dry.add_argument(
        "--emulator",
        action="store_true",
        help="plan against an empty in-process Salesforce emulator",
    )
    dry.add_argument("--raw", action="store_true", help="show personal data in planned writes")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="JSON lines instead of text")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    out.add_argument(
        "--progress-every",
        type=int,
        default=10_000,
        metavar="N",
        help="without a terminal, a progress line every N records (default: 10000)",
    )
    return p


def request_from(
    p: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[ReplayRequest, KafkaSettings]:
    """The request the arguments describe; every inconsistency is an argparse error."""
    if args.progress_every < 1:
        p.error("--progress-every must be at least 1")
    dry_only = [
        f"--{n.replace('_', '-')}"
        for n in ("connection", "login_url", "emulator", "raw")
        if getattr(args, n)
    ]
    if dry_only and not args.dry_run:
        p.error(f"{', '.join(dry_only)} only apply to --dry-run")
    if args.emulator and (args.connection or args.login_url):
        p.error("--emulator plans against a local org: drop --connection and --login-url")
    bounds = (args.partition, args.from_offset, args.to_offset, args.since, args.until)
    if not (any(bounds) or args.ticket or args.type or args.all):
        p.error(
            "say which records to replay (--since/--until, --from-offset/--to-offset, "
            "--partition, --ticket, --type), or --all for the whole topic"
        )
    now_ms = int(time.time() * 1000)
    try:
        spec = SliceSpec(
            partitions=tuple(args.partition),
            from_offsets=OffsetBound.parse(args.from_offset or ()),
            to_offsets=OffsetBound.parse(args.to_offset or ()),
            since_ms=parse_time(args.since, now_ms=now_ms) if args.since else None,
            until_ms=parse_time(args.until, now_ms=now_ms) if args.until else None,
        )
    except SliceError as error:
        p.error(str(error))
    catalogue = catalogue_from_env(p)
    topic = args.topic or catalogue.inputs[0].name
    request = ReplayRequest(
        topic=topic,
        target=args.target,
        slice=spec,
        filter=EventFilter(frozenset(args.ticket), tuple(args.type)),
    )
    return request, kafka_from(p, args)


@contextlib.asynccontextmanager
async def _connection(args: argparse.Namespace) -> Any:
    """The connection the dry run plans against: configured, re-pointed, or a local emulator."""
    if args.emulator:
        from sfemulator import Emulator, EmulatorConfig, emulator_connection  # --emulator only

        async with Emulator(EmulatorConfig()) as emu:
            yield emulator_connection(emu.url, emu.credentials, emu.api_version)
        return
    settings = load_settings().get(args.connection)
    if args.login_url:
        settings = ConnectionSettings.model_validate(
            {**settings.model_dump(), "login_url": args.login_url}
        )
    yield settings


@contextlib.asynccontextmanager
async def worker_ledger(
    bootstrap: str,
    catalogue: Catalogue,
    args: argparse.Namespace,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> AsyncIterator[Ledger]:
    """The worker's ledger, read from its topic (the dry run never writes to it); an empty one
    where the worker never ran and the topic does not exist."""
    topic = catalogue.one(TopicRole.LEDGER).name
    ledger = KafkaLedger(bootstrap, topic, security=security)
    try:
        await ledger.start()
    except RuntimeError:  # start() says the topic does not exist: nothing was ever recorded
        output.say(args, f"dry run: no ledger topic {topic}: every step would run")
        yield InMemoryLedger()
        return
    output.say(args, f"dry run: ledger {topic}, {len(ledger)} steps recorded")
    try:
        yield ledger
    finally:
        await ledger.stop()


async def _dry_run(
    args: argparse.Namespace,
    kafka: KafkaSettings,
    request: ReplayRequest,
    catalogue: Catalogue,
    progress: Progress | None,
) -> ReplayReport:
    flows = load_flows(
        args.flows, external_id_fields=dict.fromkeys(OBJECTS_WITH_KEYS, DEFAULT_EXTERNAL_ID_FIELD)
    )
    async with (
        _connection(args) as settings,
        SalesforceClient(settings) as client,
        worker_ledger(
            str(kafka.bootstrap_servers), catalogue, args, security=kafka.security
        ) as ledger,
    ):
        await client.connect()  # a refused login is one clear error, not a failure per event
        output.say(
            args,
            f"dry run: {len(flows)} flows from {args.flows}, Salesforce connection "
            f"{settings.name!r} at {settings.login_url}",
        )
        ports = Ports(gateway=ConsistentGateway(client, client), ledger=ledger)
        runner = DryRunner(flows, catalogue, ports)
        show = (output.json_printer if args.json else output.printer)(raw=args.raw)
        return await replay_dry_run(
            str(kafka.bootstrap_servers),
            request,
            runner,
            on_event=show,
            progress=progress,
            security=kafka.security,
        )


def main(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    request, kafka = request_from(p, args)
    output.say(args, f"replay id: {request.replay_id}")
    try:
        with output.progress(args.progress_every, not args.quiet) as progress:
            if args.dry_run:
                run = _dry_run(args, kafka, request, catalogue_from_env(p), progress)
            else:
                run = replay(
                    str(kafka.bootstrap_servers),
                    request,
                    progress=progress,
                    security=kafka.security,
                )
            report = asyncio.run(run)
    except EXPECTED_ERRORS as error:
        print(f"actionflows replay: {describe(error)}", file=sys.stderr)
        return 1
    output.print_summary(report, as_json=args.json)
    return 0
