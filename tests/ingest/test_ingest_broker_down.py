"""While no broker answers, the ingest answers 503 with Retry-After and produces nothing; once one
does, Zendesk's retry of the same delivery is accepted. This test runs its own broker, on a port
chosen before it exists, so it can start it late and stop it early."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from agents.ingest.server import IngestServer
from agents.settings import KafkaSettings
from localkafka import BrokerOptions, LocalBroker
from localkafka.broker import free_port
from tests.ingest.conftest import SECRET, settings_for
from tests.ingest.test_ingest_server import CREATED
from tests.ingest.zendesk_side import signed
from tests.kafkatools import read


async def deliver(
    http: aiohttp.ClientSession, ingest: IngestServer
) -> tuple[int, dict[str, Any], Any]:
    """One delivery attempt, signed afresh as Zendesk does for each attempt."""
    url = ingest.url + "/webhooks/zendesk"
    async with http.post(url, data=CREATED, headers=signed(SECRET, CREATED)) as response:
        return response.status, await response.json(), response.headers


async def status_of(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_broker_down_then_up_then_down_again(unique: str) -> None:
    port = free_port()
    settings = settings_for(f"127.0.0.1:{port}", unique, publish_timeout_s=2.0)
    broker = LocalBroker(
        BrokerOptions(kafka_version=KafkaSettings.from_env().local_version, port=port)
    )
    async with IngestServer(settings) as ingest, aiohttp.ClientSession() as http:
        # 1. nothing listens on the port yet
        status, answer, headers = await deliver(http, ingest)
        assert (status, answer["error"], headers["Retry-After"]) == (503, "broker_unavailable", "5")
        assert (await status_of(http, ingest.url + "/readyz"))[0] == 503
        health = await status_of(http, ingest.url + "/healthz")
        assert (health[0], health[1]["kafka"]) == (200, "connecting")  # alive, not ready

        # 2. the broker comes up; the ingest connects by itself; the retry is accepted
        await asyncio.to_thread(broker.start)
        try:
            await ingest.publisher.wait_connected(60)
            assert (await status_of(http, ingest.url + "/readyz"))[0] == 200
            status, answer, _ = await deliver(http, ingest)
            assert status == 200, answer
            [record] = await read(settings.bootstrap_servers, ingest.publisher.topics["tickets"], 1)
            assert (record.offset, record.value) == (0, CREATED)  # the 503 produced nothing
        finally:
            # 3. the broker goes away while the ingest runs
            await asyncio.to_thread(broker.stop)
        status, answer, headers = await deliver(http, ingest)
        assert (status, answer["error"], headers["Retry-After"]) == (503, "broker_unavailable", "5")
        assert (await status_of(http, ingest.url + "/readyz"))[0] == 503
        assert ingest.stats.snapshot()["refused.503.broker_unavailable"] == 2
