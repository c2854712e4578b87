"""The composition root: settings in, a running worker out.

``Service`` puts together the faust app, the topic catalogue, the flows, the Salesforce client
(a real org, or the emulator's connection settings) and the engine. ``actionflows worker``, ``actionflows demo``
and the end-to-end tests all start the engine through it, so they run the same wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient

from agents.app import create_app
from agents.engine import Engine, EngineSettings
from agents.kafka_client import client_options
from agents.ledger import KafkaLedger
from agents.observe import Observability
from agents.publisher import FaustPublisher
from agents.settings import PLAINTEXT, KafkaSecurity, ObserveSettings, WorkerSettings
from agents.worker import Worker, ensure_topics, read_limits
from pipeline.ledger import InMemoryLedger, Ledger
from pipeline.loader import load_flows
from pipeline.outcome import pause_cause, qualified_name
from pipeline.plan import FlowSet
from pipeline.ports import FlowGateway
from pipeline.runner import Clock, Ports
from salesforce.batching import MAX_LINGER_S, BatchingGateway
from salesforce.budget import BudgetedGateway, BudgetGovernor, BudgetPolicy
from salesforce.client import SalesforceClient
from salesforce.consistency import ConsistentGateway
from salesforce.errors import SalesforceError
from salesforce.settings import ConnectionSettings
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole

log = logging.getLogger(__name__)

# The custom field that makes creates idempotent (an upsert keyed by a deterministic key).
# It must exist on each object in the org (Text(80), External ID, Unique): see docs/salesforce.md.
DEFAULT_EXTERNAL_ID_FIELD = "Actionflows_Key__c"
OBJECTS_WITH_KEYS = ("lead", "contact", "account", "opportunity", "case", "campaign")
# How long a stop waits for faust's own stop, after the grace period, and then for each client.
# With a broker unreachable, aiokafka's consumers can fail to close: faust would wait a minute
# for its consumer thread (mode's ``shutdown_timeout``), and a plain consumer's stop can hang.
FAUST_STOP_S = 10.0
CLIENT_STOP_S = 5.0


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    worker: WorkerSettings
    connection: ConnectionSettings
    topics: CatalogueSettings = field(default_factory=CatalogueSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    external_id_fields: Mapping[str, str] = field(
        default_factory=lambda: dict.fromkeys(OBJECTS_WITH_KEYS, DEFAULT_EXTERNAL_ID_FIELD)
    )
    batching: bool = True  # coalesce concurrent single-record writes into Collections calls
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)
    observe: ObserveSettings = field(default_factory=ObserveSettings)  # metrics, health, traces


class Service:
    """One worker process: start it, let it run, stop it. Holds no business rules."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        flows: FlowSet | None = None,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
        gateway: FlowGateway | None = None,
    ) -> None:
        """``flows``, ``ledger``, ``clock``, ``gateway``: use these instead of the ones the
        config names (tests: a fake Salesforce gateway replaces the client's)."""
        self.config = config
        self.catalogue = Catalogue.build(config.topics)
        self.flows = (
            flows
            if flows is not None
            else load_flows(config.worker.flows_dir, external_id_fields=config.external_id_fields)
        )
        self.client = SalesforceClient(config.connection)
        self.governor = BudgetGovernor(config.budget)
        self.client.on_usage(self.governor.observe)
        self.batching = (
            BatchingGateway(
                self.client,
                gather_s=config.engine.salesforce_gather_s,
                # Behind a call in flight too, what waits goes when the call returns or after
                # the same interval (never less than the gateway's default).
                max_linger_s=max(config.engine.salesforce_gather_s, MAX_LINGER_S),
            )
            if config.batching
            else None
        )
        self._uses_client = gateway is None
        consistent = ConsistentGateway(self.batching or self.client, self.client)
        gateway = gateway or BudgetedGateway(consistent, self.governor)
        self.app: faust.App = create_app(config.worker)
        self.ledger = ledger or self._default_ledger()
        # Metrics, traces and health (agents/observe): step spans around the executor, the
        # engine's observer, trace headers on its outcomes, the client's calls.
        self.observability = Observability(
            config.observe,
            app=self.app,
            bootstrap_servers=config.worker.bootstrap_servers,
            security=config.worker.security,
        )
        self.ports = self.observability.wrap_ports(
            Ports(gateway=gateway, ledger=self.ledger, clock=clock or Clock())
        )
        stopping = asyncio.Event()
        self.publisher = FaustPublisher(
            self.app,
            stopping,
            self.catalogue,
            max_request_size=self.app.conf.producer_max_request_size,
        )
        self.engine = Engine(
            flows=self.flows,
            catalogue=self.catalogue,
            ports=self.ports,
            publisher=self.publisher,
            settings=config.engine,
            stopping=stopping,
            observer=self.observability.observer,
        )
        self.observability.attach(
            self.engine, client=self.client, governor=self.governor, ledger=self.ledger
        )
        self.worker = Worker(
            self.app, self.engine, self.catalogue, max_in_flight=config.engine.max_in_flight
        )

    def _default_ledger(self) -> Ledger:
        """The ledger topic's; with the ledger switched off, a memory a restart forgets."""
        specs = self.catalogue.by_role(TopicRole.LEDGER)
        if not specs:
            return InMemoryLedger()
        worker = self.config.worker
        return KafkaLedger(
            worker.bootstrap_servers,
            specs[0].name,
            security=worker.security,
            compression=worker.compression,
        )

    async def start(self) -> None:
        """Start everything, the health endpoints first: a port already taken fails before
        faust starts its threads, and /readyz answers (and says why not) while the worker
        waits for the broker or for Salesforce to accept its login. A start that fails part
        way stops what it started, so the process can exit."""
        await self.observability.start()
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop(grace_s=0)
            raise

    async def _start(self) -> None:
        bootstrap, security = self.config.worker.bootstrap_servers, self.config.worker.security
        # The cluster's size decides the default replication of the topics made here (the
        # names do not depend on it), and of any topic faust should make of its own.
        brokers = await broker_count(bootstrap, security=security)
        self.catalogue = Catalogue.build(self.config.topics, brokers=brokers)
        self.app.conf.topic_replication_factor = self.catalogue.specs[0].replication_factor
        created = await ensure_topics(bootstrap, self.catalogue, security=security)
        if created:
            log.info("created topics: %s", ", ".join(created))
        # What the broker accepts: outcomes are bounded to it, and the decoder accepts no event
        # its dead letter or retry could not carry whole.
        self.publisher.limits = await read_limits(
            bootstrap, [spec.name for spec in self.catalogue.all()], security=security
        )
        self.engine.align_event_limit(
            min(
                self.publisher.limit(spec.name)
                for spec in (
                    self.catalogue.one(TopicRole.DEAD_LETTERS),
                    *self.catalogue.retry_tiers,
                )
            )
        )
        if self._uses_client:
            await self.login()
        if isinstance(self.ledger, KafkaLedger):
            await self.ledger.start()
        await self.app.start()

    async def login(self) -> None:
        """Log in before consuming (:meth:`start` does; at once if already logged in).

        A refused login (or an unreachable login endpoint) pauses and retries as it does at run
        time, logged once, until it works or this is cancelled (the worker stops while waiting);
        an error that retrying cannot fix is raised. Either way the client is then closed."""
        try:
            await self._login()
        except (asyncio.CancelledError, SalesforceError):
            await self.client.close()
            raise

    async def _login(self) -> None:
        waiting = False
        while True:
            try:
                await self.client.connect()
            except SalesforceError as error:
                if not error.retriable:
                    raise
                delay = max(error.retry_after or 0.0, self.config.engine.min_pause_s)
                if not waiting:
                    cause = pause_cause(error) if error.throttle else "Salesforce is unreachable"
                    log.warning(
                        "cannot start yet: %s (%s: %s); retrying every %.1fs until it works "
                        "or the worker stops",
                        cause, qualified_name(error), error, delay,
                    )  # fmt: skip
                    waiting = True
                await self.ports.clock.sleep(delay)
                continue
            if waiting:
                log.info("Salesforce accepted the login; starting")
            return

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the records in flight, in every agent, finish (for up to ``grace_s``), then
        stop. Those that do not finish in time (a pause, a slow call) are abandoned
        unacknowledged and delivered again; what finished is committed as faust stops."""
        self.engine.stopping.set()
        if not await self.worker.stop(grace_s):
            log.warning("stopped with records in flight; they will be delivered again")
        await self.engine.close()
        await _bounded("faust", self.app.stop(), FAUST_STOP_S)
        if isinstance(self.ledger, KafkaLedger):
            await _bounded("the ledger", self.ledger.stop(), CLIENT_STOP_S)
        if self.batching is not None:
            await _bounded("the Salesforce batching", self.batching.close(), CLIENT_STOP_S)
        await _bounded("the Salesforce client", self.client.close(), CLIENT_STOP_S)
        await _bounded("the observability server", self.observability.stop(), CLIENT_STOP_S)

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def broker_count(bootstrap_servers: str, *, security: KafkaSecurity = PLAINTEXT) -> int:
    """How many brokers the cluster has, as its metadata says."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(security))
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


async def _bounded(what: str, stopping: Coroutine[Any, Any, object], timeout_s: float) -> None:
    """Run one part of a stop for at most ``timeout_s``, in a task of its own: neither its
    failure, nor a cancellation raised inside it (aiokafka's and mode's stops can raise one
    while they cancel their own tasks), nor its hanging stops the rest of the stop."""
    started = time.monotonic()
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.warning(
            "%s did not stop within %.0fs (is a broker unreachable?); not waiting", what, timeout_s
        )
    elif task.cancelled():
        log.warning("%s's stop ended cancelled (by a task of its own); going on", what)
    elif (error := task.exception()) is not None:
        log.error("%s did not stop cleanly", what, exc_info=error)
    elif (took := time.monotonic() - started) >= timeout_s / 2:
        log.warning("%s took %.0fs to stop", what, took)
