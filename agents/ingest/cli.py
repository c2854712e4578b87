"""``actionflows ingest``: run the webhook ingest against ``KAFKA_BOOTSTRAP_SERVERS`` until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace

from agents import loops
from agents.config_check import add_check_config, report_config
from agents.ingest.server import IngestServer
from agents.ingest.settings import IngestSettings, IngestSettingsError
from agents.kafka_client import client_options
from agents.settings import EnvironmentReads, KafkaSettings, event_loop_from_env
from zendesk.errors import ConfigurationError


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="actionflows ingest",
        description="Receive Zendesk webhooks (POST /webhooks/zendesk) and generic events "
        "(POST /events) and produce them to the input topics. Settings: docs/zendesk.md.",
    )
    parser.add_argument(
        "--host", help="bind address (default ACTIONFLOWS_INGEST_HOST or 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, help="port (default ACTIONFLOWS_INGEST_PORT or 8088)")
    add_check_config(parser)
    args = parser.parse_args(argv)
    env = EnvironmentReads()
    try:
        bootstrap = KafkaSettings.from_env(env).bootstrap_servers
        if not bootstrap:
            parser.error(
                "set KAFKA_BOOTSTRAP_SERVERS (`actionflows run` starts a local broker and an ingest)"
            )
        settings = IngestSettings.from_env(bootstrap, env)
        event_loop = event_loop_from_env(env)
        client_options(settings.security)  # the TLS files parse
    except (IngestSettingsError, ConfigurationError, ValueError, OSError) as error:
        print(f"actionflows ingest: {error}", file=sys.stderr)
        return 1
    if args.host is not None:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)
    if args.check_config:
        return report_config("ingest", _plan(settings), env)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        loops.run(_serve(settings), event_loop)
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken, the address is not ours
        print(f"actionflows ingest: {error}", file=sys.stderr)
        return 1
    return 0


def _plan(settings: IngestSettings) -> list[str]:
    """What ``--check-config`` prints: counts of secrets, never one."""
    enrichment = settings.enrichment
    return [
        f"listen: http://{settings.host}:{settings.port} (POST /webhooks/zendesk, POST /events, "
        "/healthz, /readyz)",
        f"kafka: {settings.bootstrap_servers} ({settings.security.describe()})",
        f"topics: prefix {settings.topics.prefix}, {settings.topics.partitions} partitions",
        f"zendesk signing secrets: {len(settings.signing_secrets)}, "
        f"bearer tokens: {len(settings.bearer_tokens)}",
        "enrichment: "
        + (f"on, from {enrichment.zendesk.base_url}" if enrichment is not None else "off"),
        f"largest body: {settings.max_body_bytes} bytes",
    ]


async def _serve(settings: IngestSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with IngestServer(settings) as ingest:
        enrichment = "on" if ingest.enricher is not None else "off"
        print(
            f"ingest listening on {ingest.url} (POST /webhooks/zendesk, POST /events; "
            f"Kafka {settings.bootstrap_servers}; enrichment {enrichment}); Ctrl-C stops it",
            flush=True,
        )
        await stop.wait()
