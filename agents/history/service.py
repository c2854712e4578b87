"""``actionflows api`` (or ``actionflows console``): the run-history indexer, its JSON API and
the web console, in one process.

:class:`HistoryService` is the wiring (a store, its thread, the indexer, the app with health,
metrics, the API routes and, when given its config, the console) that the commands, the demo
and the tests all start the same way. Run one per deployment: any number of workers share it,
since it reads the topics, not them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.config_check import add_check_config, report_config
from agents.console import ConsoleConfig, mount
from agents.history.api import create_app
from agents.history.indexer import History, Indexer
from agents.history.store import Store
from agents.kafka_client import client_options
from agents.observe import logs
from agents.observe.health import BrokerProbe, Check, Health, Heartbeat
from agents.observe.http import Server
from agents.settings import (
    PLAINTEXT,
    ConsoleSettings,
    EnvironmentReads,
    HistorySettings,
    KafkaSecurity,
    KafkaSettings,
    ObserveSettings,
    topics_from_env,
)
from salesforce.settings import ConnectionSettings, SettingsError, load_settings
from topics.catalogue import Catalogue

log = logging.getLogger(__name__)


class HistoryService:
    """The indexer and the API over one store; start, run, stop."""

    def __init__(
        self,
        settings: HistorySettings,
        *,
        bootstrap_servers: str,
        catalogue: Catalogue,
        store: Store | None = None,
        expire_every_s: float = 60.0,
        console: ConsoleConfig | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.settings = settings
        self.history = History(store or Store(settings.database))
        self.indexer = Indexer(
            self.history,
            bootstrap_servers,
            catalogue,
            expire_every_s=expire_every_s,
            security=security,
        )
        self.heartbeat = Heartbeat()
        self.broker = BrokerProbe(bootstrap_servers, security=security)
        self.registry = CollectorRegistry()
        self.registry.register(_IndexerMetrics(self.indexer))
        self.health = Health(
            live={"event_loop": self.heartbeat.check, "indexer": self._indexer_alive},
            ready={"broker": self.broker.check, "indexer": self._indexer_ready},
        )
        self.app: web.Application = create_app(
            settings.http, self.history, self.indexer, health=self.health, registry=self.registry
        )
        if console is not None:
            mount(
                self.app,
                console,
                history=self.history,
                indexer=self.indexer,
                bootstrap_servers=bootstrap_servers,
                catalogue=catalogue,
                token=settings.http.token,
                security=security,
            )
        self.server = Server(self.app, settings.http.host, settings.http.port)

    @property
    def url(self) -> str:
        return self.server.url

    def _indexer_alive(self) -> Check:
        if self.indexer.alive:
            return Check(True, "the indexer is running")
        return Check(False, f"the indexer has stopped: {self.indexer.last_error}")

    async def _indexer_ready(self) -> Check:
        return self._indexer_alive()

    async def start(self) -> HistoryService:
        self.heartbeat.start()
        await self.indexer.start()
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()
        await self.indexer.stop()
        await self.heartbeat.stop()
        await self.broker.close()
        self.history.close()

    async def __aenter__(self) -> HistoryService:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class _IndexerMetrics(Collector):
    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    def collect(self) -> Iterable[Metric]:
        indexed = CounterMetricFamily(
            "actionflows_history_records_indexed", "Records indexed, by topic", labels=["topic"]
        )
        unreadable = CounterMetricFamily(
            "actionflows_history_records_unreadable",
            "Records skipped because they were not what their topic promises",
            labels=["topic"],
        )
        for topic in self.indexer.roles:
            indexed.add_metric([topic], self.indexer.indexed[topic])
            unreadable.add_metric([topic], self.indexer.unreadable[topic])
        rebuilds = CounterMetricFamily(
            "actionflows_history_rebuilds", "Rebuilds of the history from the topics"
        )
        rebuilds.add_metric([], self.indexer.rebuilds)
        up = GaugeMetricFamily("actionflows_history_indexer_up", "1 while the indexer runs")
        up.add_metric([], int(self.indexer.alive))
        return [indexed, unreadable, rebuilds, up]


def parser(prog: str = "actionflows api") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Index the run-results, step-outputs and dead-letters topics into the run "
        "history and serve its JSON API and the web console (docs/operations.md).",
    )
    p.add_argument(
        "--database", type=Path, help="the SQLite file (default: $ACTIONFLOWS_HISTORY_DB)"
    )
    p.add_argument(
        "--port", type=int, help="the API's port (default: $ACTIONFLOWS_API_PORT or 6067)"
    )
    p.add_argument(
        "--rebuild", action="store_true", help="empty the history and index the topics again"
    )
    p.add_argument(
        "--flows", type=Path, help="the console's flow folder (default: $ACTIONFLOWS_FLOWS_DIR)"
    )
    p.add_argument("--connection", help="the Salesforce connection the console's indicator checks")
    return p


def console_main(argv: list[str]) -> int:
    """``actionflows console``: the same process, under the name people look for."""
    return main(argv, prog="actionflows console")


def main(argv: list[str], prog: str = "actionflows api") -> int:
    p = parser(prog)
    add_check_config(p)
    args = p.parse_args(argv)
    env = EnvironmentReads()
    try:
        observe = ObserveSettings.from_env(env)
        settings = HistorySettings.from_env(env)
        catalogue = Catalogue.build(topics_from_env(env))
        kafka = KafkaSettings.from_env(env)
        client_options(kafka.security)  # the TLS files parse
        console = ConsoleConfig(ConsoleSettings.from_env(env), *_connection(args.connection, env))
    except (ValueError, OSError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.flows is not None:
        console = dataclasses.replace(
            console, settings=dataclasses.replace(console.settings, flows_dir=args.flows)
        )
    bootstrap = kafka.bootstrap_servers
    if not bootstrap:
        p.error("set KAFKA_BOOTSTRAP_SERVERS")
    if args.port is not None:
        settings = dataclasses.replace(
            settings, http=dataclasses.replace(settings.http, port=args.port)
        )
    if args.database is not None:
        settings = dataclasses.replace(settings, database=args.database)
    if args.check_config:
        plan = _plan(settings, kafka, catalogue)
        if console.connection is not None:
            plan.append(f"salesforce: connection {console.connection.name!r}")
        elif args.connection is not None or console.connection_problem:
            plan.append(f"salesforce: none ({console.connection_problem})")
        return report_config(prog.split()[-1], plan, env)
    logs.configure(observe.log_format, observe.log_level)
    try:
        asyncio.run(_serve(settings, kafka, catalogue, console, rebuild=args.rebuild))
    except (RuntimeError, OSError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _connection(name: str | None, env: Mapping[str, str]) -> tuple[ConnectionSettings | None, str]:
    """The connection the indicator checks, or None and why: a console starts without one."""
    try:
        configured = load_settings(env)
        if not configured.connections and name is None:
            return None, "no Salesforce connection is configured (see docs/salesforce.md)"
        return configured.get(name), ""
    except SettingsError as error:
        return None, f"the Salesforce settings are unusable: {error}"


def _plan(settings: HistorySettings, kafka: KafkaSettings, catalogue: Catalogue) -> list[str]:
    """What ``--check-config`` prints (whether a token is set, never the token)."""
    http = settings.http
    return [
        f"listen: http://{http.host}:{http.port} (the console, the API, /healthz, /readyz, "
        "/metrics)",
        f"token: {'set' if http.token is not None else 'none: every route but /healthz answers 401'}",
        f"kafka: {kafka.bootstrap_servers} ({kafka.security.describe()})",
        f"topics: prefix {catalogue.prefix}",
        f"store: {settings.database}",
    ]


async def _serve(
    settings: HistorySettings,
    kafka: KafkaSettings,
    catalogue: Catalogue,
    console: ConsoleConfig,
    *,
    rebuild: bool,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with HistoryService(
        settings,
        bootstrap_servers=str(kafka.bootstrap_servers),
        catalogue=catalogue,
        console=console,
        security=kafka.security,
    ) as service:
        if rebuild:
            service.indexer.rebuild()
        if settings.http.token is None:
            log.warning("no ACTIONFLOWS_API_TOKEN: every route but /healthz answers 401")
        print(
            f"console at {service.url}/console/; run history at {service.url} (API under "
            f"/api/), store {settings.database}; Ctrl-C stops it",
            flush=True,
        )
        await stop.wait()
