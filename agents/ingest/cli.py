"""``actionflows ingest``: run the webhook ingest against ``KAFKA_BOOTSTRAP_SERVERS`` until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace

from agents.ingest.server import IngestServer
from agents.ingest.settings import IngestSettings, IngestSettingsError
from agents.settings import KafkaSettings
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
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bootstrap = KafkaSettings.from_env().bootstrap_servers
    if not bootstrap:
        parser.error(
            "set KAFKA_BOOTSTRAP_SERVERS (`actionflows run` starts a local broker and an ingest)"
        )
    try:
        settings = IngestSettings.from_env(bootstrap)
    except (IngestSettingsError, ConfigurationError, ValueError) as error:
        print(f"actionflows ingest: {error}", file=sys.stderr)
        return 1
    if args.host is not None:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken, the address is not ours
        print(f"actionflows ingest: {error}", file=sys.stderr)
        return 1
    return 0


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
