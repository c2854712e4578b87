"""The history indexer on the real broker: it resumes where it stopped, rebuilds from the topics,
and lets rows go when their records leave the topics."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from agents.history.indexer import History, Indexer
from agents.history.rows import Source
from agents.history.service import HistoryService
from agents.history.store import RunQuery, Store
from agents.settings import HistorySettings, HttpSettings
from agents.worker import ensure_topics
from tests.history.records import dead_letter, run_result, step_output
from topics.catalogue import Catalogue, CatalogueSettings

TOKEN = "indexer-test-token"
DAY_MS = 86_400_000


async def publish(kafka: str, catalogue: Catalogue, sources: Sequence[Source]) -> None:
    """Put records on the deployment's topics (the test's records name the default prefix)."""
    names = {spec.role.value: spec.name for spec in catalogue.all()}
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for source in sources:
            role = source.topic.removeprefix("actionflows.")
            await producer.send_and_wait(
                names[role], source.value, key=source.key, timestamp_ms=source.timestamp_ms,
                headers=list(source.headers),
            )  # fmt: skip
    finally:
        await producer.stop()


async def deployment(kafka: str, unique: str) -> Catalogue:
    catalogue = Catalogue.build(CatalogueSettings(prefix=f"hist-{unique}", partitions=2))
    await ensure_topics(kafka, catalogue)
    return catalogue


async def runs(url: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(url + "/api/runs", params={"include": "steps", "limit": "500"}) as response,
    ):
        page = orjson.loads(await response.read())
    return list(page["items"])


def settings(tmp_path: Path) -> HistorySettings:
    return HistorySettings(
        tmp_path / "history.sqlite3", HttpSettings(port=0, token=SecretStr(TOKEN)), ""
    )


async def caught_up(service: HistoryService) -> None:
    await asyncio.wait_for(service.indexer.wait_caught_up(), timeout=60)


async def test_it_resumes_where_it_stopped_and_rebuilds_from_the_topics(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    catalogue = await deployment(kafka, unique)
    now = int(time.time() * 1000)
    first = [
        *(run_result(i, run_id=f"r{i}", ticket=f"T{i}", at_ms=now - i) for i in range(5)),
        step_output(0, "find_lead", run_id="r0", ticket="T0", at_ms=now),
        dead_letter(0, ticket="T9", at_ms=now),
    ]
    await publish(kafka, catalogue, first)
    async with HistoryService(
        settings(tmp_path), bootstrap_servers=kafka, catalogue=catalogue
    ) as service:
        await caught_up(service)
        before = await runs(service.url)
        assert len(before) == 5
        assert service.indexer.indexed[f"hist-{unique}.run-results"] == 5

    # Restarted on the same file: only what was published meanwhile is read.
    await publish(kafka, catalogue, [run_result(9, run_id="r9", ticket="T9", at_ms=now)])
    async with HistoryService(
        settings(tmp_path), bootstrap_servers=kafka, catalogue=catalogue
    ) as service:
        await caught_up(service)
        assert service.indexer.indexed[f"hist-{unique}.run-results"] == 1
        after_restart = await runs(service.url)
        assert len(after_restart) == 6

        # The store is lost (here: emptied behind the API's back)...
        await service.history.call(service.history.store.clear)
        assert await runs(service.url) == []
        # ...and rebuilt from the topics.
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
            session.post(service.url + "/api/index/rebuild") as response,
        ):
            assert response.status == 202
        await asyncio.wait_for(service.indexer.rebuilt(), timeout=30)
        await caught_up(service)
        assert await runs(service.url) == after_restart
        assert service.indexer.rebuilds == 1


async def test_rows_leave_with_their_records(kafka: str, unique: str) -> None:
    """Retention comes from the broker (14 days here); a row goes once its record would."""
    catalogue = await deployment(kafka, unique)
    clock = [time.time()]
    now = int(clock[0] * 1000)
    await publish(kafka, catalogue, [
        run_result(0, run_id="gone", ticket="T1", at_ms=now - 15 * DAY_MS),
        run_result(1, run_id="going", ticket="T2", at_ms=now - 14 * DAY_MS + 3_600_000),
    ])  # fmt: skip
    history = History(Store(":memory:"))
    indexer = Indexer(history, kafka, catalogue, expire_every_s=0, clock=lambda: clock[0])
    await indexer.start()
    try:
        assert indexer.retention_ms[f"hist-{unique}.run-results"] == 14 * DAY_MS
        await asyncio.wait_for(indexer.wait_caught_up(), timeout=60)
        page = await history.call(history.store.runs, RunQuery())
        assert [r["run_id"] for r in page.items] == ["going"]
        clock[0] += 2 * 3600  # two hours later, the second record has left its topic too
        await publish(kafka, catalogue, [dead_letter(0, at_ms=now)])  # one more turn
        await asyncio.wait_for(indexer.wait_caught_up(), timeout=60)
        page = await history.call(history.store.runs, RunQuery())
        assert page.items == []
    finally:
        await indexer.stop()
        history.close()


async def test_the_api_command_serves_until_it_is_told_to_stop(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """`actionflows api` as an operator runs it: it says where it listens, answers, exits 0."""
    await deployment(kafka, unique)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ACTIONFLOWS_TOPIC_PREFIX": f"hist-{unique}",
        "ACTIONFLOWS_HISTORY_DB": str(tmp_path / "history.sqlite3"),
        "ACTIONFLOWS_API_TOKEN": TOKEN,
        "ACTIONFLOWS_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.cli", "api", "--port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        match = re.search(r"run history at (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with (
            aiohttp.ClientSession() as session,
            session.get(match.group(1) + "/healthz") as response,
        ):
            assert response.status == 200
        assert await runs(match.group(1)) == []
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=60)
    assert code == 0
