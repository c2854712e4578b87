"""The composition root: settings in, a running worker out.

``Service`` puts together the faust app, the topic catalogue, the flows, the Salesforce client
(a real org, or the emulator's connection settings) and the engine. ``actionflows worker``, ``actionflows demo``
and the end-to-end tests all start the engine through it, so they run the same wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import faust
from aiokafka.admin import AIOKafkaAdminClient

from agents.app import create_app
from agents.engine import Engine, EngineSettings
from agents.ledger import KafkaLedger
from agents.settings import WorkerSettings
from agents.worker import FaustPublisher, attach_engine, ensure_topics
from pipeline.ledger import InMemoryLedger, Ledger
from pipeline.loader import load_flows
from pipeline.plan import FlowSet
from pipeline.runner import Clock, Ports
from salesforce.batching import BatchingGateway
from salesforce.budget import BudgetedGateway, BudgetGovernor, BudgetPolicy
from salesforce.client import SalesforceClient
from salesforce.settings import ConnectionSettings
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole

log = logging.getLogger(__name__)

# The custom field that makes creates idempotent (an upsert keyed by a deterministic key).
# It must exist on each object in the org (Text(80), External ID, Unique): see docs/salesforce.md.
DEFAULT_EXTERNAL_ID_FIELD = "Actionflows_Key__c"
OBJECTS_WITH_KEYS = ("lead", "contact", "account", "opportunity", "case", "campaign")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    worker: WorkerSettings
    connection: ConnectionSettings
    topics: CatalogueSettings = field(default_factory=CatalogueSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    external_id_fields: Mapping[str, str] = field(
        default_factory=lambda: dict.fromkeys(OBJECTS_WITH_KEYS, DEFAULT_EXTERNAL_ID_FIELD)
    )
    batch_max: int = 500
    linger_s: float = 0.02
    batching: bool = True  # coalesce concurrent single-record writes into Collections calls
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)


class Service:
    """One worker process: start it, let it run, stop it. Holds no business rules."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        flows: FlowSet | None = None,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
    ) -> None:
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
        self.batching = BatchingGateway(self.client) if config.batching else None
        gateway = BudgetedGateway(self.batching or self.client, self.governor)
        self.app: faust.App = create_app(config.worker)
        self.ledger = ledger or self._default_ledger()
        self.ports = Ports(gateway=gateway, ledger=self.ledger, clock=clock or Clock())
        stopping = asyncio.Event()
        self.engine = Engine(
            flows=self.flows,
            catalogue=self.catalogue,
            ports=self.ports,
            publisher=FaustPublisher(self.app, stopping),
            settings=config.engine,
            stopping=stopping,
        )
        attach_engine(
            self.app, self.engine, self.catalogue,
            batch_max=config.batch_max, linger_s=config.linger_s,
        )  # fmt: skip

    def _default_ledger(self) -> Ledger:
        """The ledger topic's; with the ledger switched off, a memory a restart forgets."""
        specs = self.catalogue.by_role(TopicRole.LEDGER)
        if not specs:
            return InMemoryLedger()
        return KafkaLedger(self.config.worker.bootstrap_servers, specs[0].name)

    async def start(self) -> None:
        bootstrap = self.config.worker.bootstrap_servers
        # The cluster's size decides the default replication of the topics made here (the
        # names do not depend on it), and of any topic faust should make of its own.
        self.catalogue = Catalogue.build(self.config.topics, brokers=await broker_count(bootstrap))
        self.app.conf.topic_replication_factor = self.catalogue.specs[0].replication_factor
        created = await ensure_topics(bootstrap, self.catalogue)
        if created:
            log.info("created topics: %s", ", ".join(created))
        await self.client.connect()
        if isinstance(self.ledger, KafkaLedger):
            await self.ledger.start()
        await self.app.start()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the batch in progress finish (for up to ``grace_s``), then stop. A batch that
        does not finish in time (a budget pause) is abandoned unacknowledged and redelivered."""
        self.engine.stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.engine.idle.wait(), grace_s)
        with contextlib.suppress(Exception):
            await self.app.stop()
        if isinstance(self.ledger, KafkaLedger):
            await self.ledger.stop()
        if self.batching is not None:
            await self.batching.close()
        await self.client.close()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def broker_count(bootstrap_servers: str) -> int:
    """How many brokers the cluster has, as its metadata says."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()
