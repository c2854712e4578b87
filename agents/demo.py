"""``actionflows demo`` and ``make run``: the whole service on embedded defaults, watched live.

It starts the local broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), the Salesforce emulator with a
small seeded org (unless a real connection is configured and chosen), the worker on ``flows/``,
the webhook ingest (with the Zendesk API emulator for requester enrichment), then posts
``samples/`` through the ingest as Zendesk and other helpdesks would — signed webhooks, bearer
events — and prints every step output, run result, retry and dead letter as it arrives. The
malformed samples are refused by the ingest (400) and then produced straight to Kafka, as a
producer that bypasses the ingest would, to show the worker dead-lettering them. ``demo`` exits with a summary once every sample event has reached a final outcome;
``run`` (``follow=True``) keeps the worker running until Ctrl-C, with the web console (the run
history and its pages, :func:`web_console`) beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agents.console import ConsoleConfig
from agents.history.service import HistoryService
from agents.ingest.enrich import enriched, wants_organization, wants_requester
from agents.ingest.server import IngestServer
from agents.ingest.settings import EnrichmentSettings, IngestSettings
from agents.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from agents.ops.output import printable
from agents.service import Service, ServiceConfig
from agents.settings import (
    ConsoleSettings,
    HistorySettings,
    HttpSettings,
    KafkaSettings,
    ObserveSettings,
    WorkerSettings,
)
from localkafka import BrokerOptions, LocalBroker
from pipeline.events import Event
from pipeline.loader import load_flows
from salesforce.settings import ConnectionSettings
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole
from topics.codecs import decode_event
from topics.errors import DecodeError, HeaderError
from zdemulator import ZendeskEmulator
from zendesk.client import Organization, User

ROOT = Path(__file__).resolve().parent.parent
FINAL = {"succeeded", "skipped", "dead_letter"}

# The demo org: records the sample events refer to (a known contact and her account).
SEED = (
    ("Account", {"Name": "Acme Corporation", "Phone": "+1 415 555 0100"}),
    ("Contact", {"FirstName": "Jane", "LastName": "Doe", "Email": "jane.doe@acme.example"}),
)


# The Zendesk account behind samples/zendesk.jsonl: the people its events name by id only.
ZENDESK_USERS = (
    User("90001", "Nora Quist", "nora.quist@brightlane.example", "+44 20 7946 0101"),
    User("90002", "Jane Doe", "jane.doe@acme.example", "+1 415 555 0102", "70001"),
    User("90003", "Omar Haddad", "omar.haddad@northwind.example", "+33 1 70 36 00 03", "70003"),
)
ZENDESK_ORGANIZATIONS = (
    Organization("70001", "Acme Corporation"),
    Organization("70003", "Northwind Traders"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    topic: str
    key: bytes
    value: bytes
    expected_runs: int  # how many flows this event starts (0 for malformed or unmatched)
    malformed: bool
    route: str = "/events?input=interactions"  # how the demo delivers it to the ingest


@dataclass
class Summary:
    events_in: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    records_written: int = 0
    retries: int = 0
    dead_letters: int = 0
    api_calls: int = 0
    seconds: float = 0.0

    def table(self) -> Table:
        table = Table(title="actionflows demo", show_header=False)
        rows = [
            ("events in", self.events_in),
            ("flow runs", ", ".join(f"{n} {s}" for s, n in sorted(self.runs.items())) or "0"),
            ("steps run", self.steps),
            ("Salesforce records written", self.records_written),
            ("delayed retries", self.retries),
            ("dead letters", self.dead_letters),
            ("Salesforce API calls", self.api_calls),
            ("wall time", f"{self.seconds:.1f}s"),
        ]
        for name, value in rows:
            table.add_row(name, str(value))
        return table


def load_samples(samples_dir: Path, catalogue: Catalogue, flows_dir: Path) -> list[Sample]:
    """The sample events, each with the number of flow runs it should produce."""
    flows = load_flows(flows_dir)
    tickets, interactions = (spec.name for spec in catalogue.inputs)
    files = (
        ("zendesk.jsonl", tickets, "/webhooks/zendesk"),
        ("generic.jsonl", interactions, "/events?input=interactions"),
        ("malformed.jsonl", tickets, "/webhooks/zendesk"),
    )
    samples = []
    for name, topic, route in files:
        path = samples_dir / name
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                event = as_ingested(decode_event(line, topic=topic), line)
            except DecodeError:
                samples.append(Sample(topic, b"malformed", line, 0, True, route))
                continue
            logical = "tickets" if topic == tickets else "interactions"
            runs = len(flows.match(event, logical))
            samples.append(Sample(topic, event.ticket_id.encode(), line, runs, False, route))
    return samples


def as_ingested(event: Event, line: bytes) -> Event:
    """The event as the ingest will produce it, its people looked up in the demo's Zendesk."""
    if not (wants_requester(event) or wants_organization(event)):
        return event
    users = {user.id: user for user in ZENDESK_USERS}
    orgs = {org.id: org for org in ZENDESK_ORGANIZATIONS}
    user = users.get(event.requester.id or "") if wants_requester(event) else None
    org = orgs.get(event.organization.id or "") if wants_organization(event) else None
    doc = enriched(orjson.loads(line), event, user, org, {"status": "enriched"})
    return decode_event(orjson.dumps(doc), topic="demo")


@contextlib.asynccontextmanager
async def kafka_cluster(console: Console) -> AsyncIterator[str]:
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        console.print(f"[bold]Kafka[/] {settings.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)")
        yield settings.bootstrap_servers
        return
    broker = LocalBroker(BrokerOptions(kafka_version=settings.local_version, partitions=3))
    await asyncio.to_thread(broker.start)
    console.print(
        f"[bold]Kafka[/] {settings.local_version} at {broker.bootstrap_servers}, "
        f"ready in {broker.startup_seconds:.1f}s (log: {broker.log_path})"
    )
    try:
        yield broker.bootstrap_servers
    finally:
        await asyncio.to_thread(broker.stop)


@contextlib.asynccontextmanager
async def salesforce(
    console: Console, connection: ConnectionSettings | None
) -> AsyncIterator[tuple[ConnectionSettings, Emulator | None]]:
    if connection is not None:
        console.print(
            f"[bold]Salesforce[/] connection {connection.name!r} at {connection.login_url}"
        )
        yield connection, None
        return
    async with Emulator(EmulatorConfig(seed=7)) as emulator:
        for sobject, fields in SEED:
            emulator.insert(sobject, dict(fields))
        console.print(
            f"[bold]Salesforce[/] emulator at {emulator.url} (API v{emulator.api_version}), "
            f"seeded with {len(SEED)} records"
        )
        yield (
            emulator_connection(emulator.url, emulator.credentials, emulator.api_version),
            emulator,
        )


@contextlib.asynccontextmanager
async def web_console(
    console: Console,
    *,
    bootstrap: str,
    catalogue: Catalogue,
    connection: ConnectionSettings,
    flows_dir: Path,
    worker_url: str,
    token: SecretStr,
) -> AsyncIterator[HistoryService]:
    """The run history and the console over the demo's topics, on ``ACTIONFLOWS_API_PORT``
    (6067) or, when that port is taken, a free one; its URL printed."""
    configured = HistorySettings.from_env().http
    config = ConsoleConfig(
        ConsoleSettings(flows_dir=flows_dir, worker_urls=(worker_url,)), connection
    )
    with tempfile.TemporaryDirectory(prefix="actionflows-demo-history-") as folder:
        for port in (configured.port, 0):
            settings = HistorySettings(
                Path(folder) / "history.sqlite3",
                HttpSettings(host=configured.host, port=port, token=token),
                "",
            )
            service = HistoryService(
                settings, bootstrap_servers=bootstrap, catalogue=catalogue, console=config
            )
            try:
                await service.start()
            except OSError as error:
                await service.stop()
                if port == 0:
                    raise
                console.print(f"[yellow]{escape(str(error))}[/]: the console takes a free port")
                continue
            break
        try:
            console.print(
                f"[bold]Console[/] at {service.url}/console/ (log in with the API token"
                + ("" if configured.token else f" {token.get_secret_value()}")
                + ")",
                soft_wrap=True,  # the URL and the token stay whole, to copy
            )
            yield service
        finally:
            await service.stop()


async def demo(
    *,
    console: Console,
    flows_dir: Path = ROOT / "flows",
    samples_dir: Path = ROOT / "samples",
    connection: ConnectionSettings | None = None,
    follow: bool = False,
    timeout_s: float = 120.0,
    prefix: str = "actionflows",
) -> tuple[bool, Summary]:
    """Run the demo; return whether every sample reached a final outcome, and the summary."""
    started = time.monotonic()
    topics = CatalogueSettings(prefix=prefix, partitions=3, retry_delays_ms=(2000, 10_000, 60_000))
    catalogue = Catalogue.build(topics)
    samples = load_samples(samples_dir, catalogue, flows_dir)
    async with (
        kafka_cluster(console) as bootstrap,
        salesforce(console, connection) as (conn, _),
        ZendeskEmulator(
            users=[_zendesk_user(user) for user in ZENDESK_USERS],
            organizations=[{"id": int(org.id), "name": org.name} for org in ZENDESK_ORGANIZATIONS],
        ) as zendesk,
    ):
        # The console's token guards the worker's metrics too, which the console reads.
        api_token = HistorySettings.from_env().http.token or SecretStr(secrets.token_urlsafe(16))
        config = ServiceConfig(
            worker=WorkerSettings(
                bootstrap_servers=bootstrap,
                app_id=f"actionflows-demo-{uuid.uuid4().hex[:6]}",
                flows_dir=flows_dir,
                topic_partitions=topics.partitions,
            ),
            connection=conn,
            topics=topics,
            observe=ObserveSettings(http=HttpSettings(port=0, token=api_token) if follow else None),
        )
        token, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
        ingest_settings = IngestSettings(
            bootstrap_servers=bootstrap,
            port=0,
            signing_secrets=(SecretStr(secret),),
            bearer_tokens=(SecretStr(token),),
            enrichment=EnrichmentSettings(zendesk=zendesk.settings()),
            topics=topics,
        )
        async with (
            Service(config) as service,
            IngestServer(ingest_settings) as ingest,
            contextlib.AsyncExitStack() as web,
        ):
            console.print(f"[bold]Worker[/] running {len(service.flows)} flows from {flows_dir}")
            if follow and service.observability.server is not None:
                await web.enter_async_context(
                    web_console(
                        console,
                        bootstrap=bootstrap,
                        catalogue=catalogue,
                        connection=conn,
                        flows_dir=flows_dir,
                        worker_url=service.observability.server.url,
                        token=api_token,
                    )
                )
            console.print(
                f"[bold]Ingest[/] at {ingest.url}: POST /webhooks/zendesk (signed), "
                f"POST /events (Authorization: Bearer {token}); requester lookups in the "
                f"Zendesk API emulator at {zendesk.url}"
            )
            watcher = Watcher(bootstrap, catalogue, console)
            await watcher.start()
            try:
                await ingest.publisher.wait_connected(timeout_s)
                await post(ingest.url, samples, secret, token, console)
                await feed(bootstrap, [s for s in samples if s.malformed])
                console.print(f"[bold]Fed[/] {len(samples)} sample events\n")
                expected_runs = sum(s.expected_runs for s in samples)
                expected_letters = sum(s.malformed for s in samples)
                done = await watcher.until(expected_runs, expected_letters, timeout_s)
                if follow:
                    console.print("\n[bold]Following[/] the topics; Ctrl-C stops the worker")
                    await watcher.until(None, None, None)
            finally:
                await watcher.stop()
            summary = watcher.summary
            summary.events_in = service.engine.stats.events_in
            summary.records_written = service.engine.stats.records_written
            summary.dead_letters = service.engine.stats.dead_letters
            summary.retries = service.engine.stats.retries_scheduled
            summary.api_calls = service.client.api_calls
    summary.seconds = time.monotonic() - started
    return done, summary


def _zendesk_user(user: User) -> dict[str, Any]:
    fields = {"email": user.email, "phone": user.phone}
    org = {"organization_id": int(user.organization_id)} if user.organization_id else {}
    return {"id": int(user.id), "name": user.name, **fields, **org}


async def post(url: str, samples: list[Sample], secret: str, token: str, console: Console) -> None:
    """Deliver each sample to the ingest, in order, as its source would."""
    async with aiohttp.ClientSession() as session:
        for sample in samples:
            if sample.route == "/webhooks/zendesk":
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                headers = {
                    TIMESTAMP_HEADER: stamp,
                    SIGNATURE_HEADER: sign(secret, stamp, sample.value),
                }
            else:
                headers = {"Authorization": f"Bearer {token}"}
            headers["Content-Type"] = "application/json"
            async with session.post(url + sample.route, data=sample.value, headers=headers) as r:
                answer = await r.json()
            if r.status != 200:
                detail = f"{answer['error']}: {answer['reason']}"[:120]
                console.print(f"[red]ingest refused[/] ({r.status}) {escape(detail)}")
            elif sample.malformed:  # the decoder accepts what the demo expected it to refuse
                console.print(f"[yellow]ingest accepted a malformed sample[/] {answer['events']}")


async def feed(bootstrap: str, samples: list[Sample]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for sample in samples:
            await producer.send(sample.topic, sample.value, key=sample.key)
        await producer.flush()
    finally:
        await producer.stop()


class Watcher:
    """Reads the output topics and prints each record as it arrives."""

    def __init__(self, bootstrap: str, catalogue: Catalogue, console: Console) -> None:
        self.console = console
        self.summary = Summary()
        self.final_runs = 0
        self.decode_letters = 0
        self._roles = {
            spec.name: spec.role
            for role in (TopicRole.STEP_OUTPUTS, TopicRole.RUN_RESULTS, TopicRole.DEAD_LETTERS,
                         TopicRole.RETRY)
            for spec in catalogue.by_role(role)
        }  # fmt: skip
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the watcher is not started")
        return self._consumer

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self._roles,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            auto_offset_reset="latest",
        )
        await self.consumer.start()
        # Pin the starting point now, before anything is fed, so nothing is missed.
        await self.consumer.seek_to_end()
        for partition in self.consumer.assignment():
            await self.consumer.position(partition)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def until(self, runs: int | None, letters: int | None, timeout_s: float | None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while runs is None or self.final_runs < runs or self.decode_letters < (letters or 0):
            if deadline is not None and time.monotonic() > deadline:
                self.console.print(
                    f"[red]timed out[/] after {timeout_s}s: {self.final_runs}/{runs} "
                    f"runs finished, {self.decode_letters}/{letters} dead letters"
                )
                return False
            batch = await self.consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self._show(self._roles[record.topic], record.value, record.headers)
        return True

    def _show(self, role: TopicRole, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """One line per record, whatever its bytes: fields that are missing or of the wrong
        type show as ``?``, and every value is escaped (rich markup, control characters)."""
        print_ = self.console.print
        if role is TopicRole.STEP_OUTPUTS:
            step = _json_object(value)
            status = _field(step, "status")
            self.summary.steps += status == "succeeded"
            colour = {"succeeded": "green", "failed": "red"}.get(status, "dim")
            action = _field(step, "action").removeprefix("salesforce.")
            print_(
                f"  [{colour}]{_shown(status):<9}[/] {_shown(_field(step, 'flow'))}/"
                f"{_shown(_field(step, 'step'))} ({_shown(action)} {_shown(_field(step, 'object'))})"
                f" {_shown(_field(step, 'salesforce_id', ''))}"
            )
        elif role is TopicRole.RUN_RESULTS:
            run = _json_object(value)
            status = _field(run, "status")
            self.summary.runs[status] = self.summary.runs.get(status, 0) + 1
            self.final_runs += status in FINAL
            colour = {"succeeded": "green", "dead_letter": "red"}.get(status, "yellow")
            duration = run.get("duration_ms")
            took = f"{duration:.0f} ms" if isinstance(duration, int | float) else "? ms"
            print_(
                f"[bold {colour}]run {_shown(status)}[/] {_shown(_field(run, 'flow'))} for event "
                f"{_shown(_field(run, 'event_id'))} (ticket {_shown(_field(run, 'ticket_id'))}) "
                f"in {took}"
            )
        elif role is TopicRole.RETRY:
            try:
                retry = h.parse_retry_headers(headers)
            except HeaderError as error:
                print_(f"[yellow]retry[/] with unreadable headers: {_shown(str(error))}")
                return
            print_(
                f"[yellow]retry[/] {_shown(retry.flow if retry and retry.flow else '?')} scheduled"
            )
        else:
            try:
                letter = h.parse_dead_letter_headers(headers)
            except HeaderError as error:
                print_(f"[red]dead letter[/] with unreadable context: {_shown(str(error))}")
                return
            self.decode_letters += letter.stage == h.Stage.DECODE
            where = f"{letter.flow}/{letter.step}" if letter.flow else letter.stage.value
            print_(
                f"[red]dead letter[/] ({_shown(where)}) {_shown(letter.reason)}: "
                f"{_shown(letter.exception_message[:120])}"
            )


def _json_object(value: bytes) -> dict[str, Any]:
    """The record's JSON object, or an empty one when it is not (every field then shows ``?``)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _field(doc: dict[str, Any], key: str, default: str = "?") -> str:
    value = doc.get(key)
    return value if isinstance(value, str) else default


def _shown(text: str) -> str:
    """A value safe to interpolate into rich markup and to print."""
    return escape(printable(text))
