"""An ingest on the real broker, and an HTTP client to talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from agents.ingest.server import IngestServer
from agents.ingest.settings import IngestSettings
from topics.catalogue import CatalogueSettings

SECRET = "aW5nZXN0LXRlc3Qtc2lnbmluZy1zZWNyZXQ="
TOKEN = "ingest-test-bearer-token"

Start = Callable[..., Awaitable[IngestServer]]


def settings_for(kafka: str, unique: str, **overrides: Any) -> IngestSettings:
    base = IngestSettings(
        bootstrap_servers=kafka,
        port=0,
        signing_secrets=(SecretStr(SECRET),),
        bearer_tokens=(SecretStr(TOKEN),),
        topics=CatalogueSettings(prefix=f"in-{unique}", partitions=2, retry_delays_ms=(1000,)),
    )
    return replace(base, **overrides)


@pytest.fixture
async def start_ingest(kafka: str, unique: str) -> AsyncIterator[Start]:
    """Start ingests (``start_ingest(**settings overrides)``), connected; all stopped at the end."""
    servers: list[IngestServer] = []

    async def start(*, connected: bool = True, **overrides: Any) -> IngestServer:
        server = await IngestServer(settings_for(kafka, unique, **overrides)).start()
        servers.append(server)
        if connected:
            await server.publisher.wait_connected(60)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def ingest(start_ingest: Start) -> IngestServer:
    return await start_ingest()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
