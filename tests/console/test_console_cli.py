"""`actionflows console` as an operator runs it: it says where the console is, serves its login
page, and exits 0 when told to stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from agents.worker import ensure_topics
from topics.catalogue import Catalogue, CatalogueSettings


async def test_the_console_command_prints_its_url_and_serves_the_login_page(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka, Catalogue.build(CatalogueSettings(prefix=f"cli-{unique}")))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ACTIONFLOWS_TOPIC_PREFIX": f"cli-{unique}",
        "ACTIONFLOWS_HISTORY_DB": str(tmp_path / "history.sqlite3"),
        "ACTIONFLOWS_API_TOKEN": "cli-token",
        "ACTIONFLOWS_CONSOLE_WORKERS": "none",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.cli", "console", "--port", "0", "--flows", str(tmp_path),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        found = re.match(r"console at (http://127\.0\.0\.1:\d+/console/);", line)
        assert found, line
        async with (
            aiohttp.ClientSession() as session,
            session.get(found.group(1)) as response,
        ):
            assert response.status == 200
            assert response.url.path == "/console/login"
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=60)
    assert code == 0
