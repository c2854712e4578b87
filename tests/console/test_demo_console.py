"""`make run` starts the console beside the worker and prints where it is and how to log in."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from rich.console import Console

from agents.demo import ROOT, web_console
from agents.worker import ensure_topics
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from topics.catalogue import Catalogue, CatalogueSettings


async def test_the_console_of_make_run_prints_its_url_and_takes_a_free_port_when_taken(
    kafka: str, unique: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With ACTIONFLOWS_API_PORT taken, the console says so and listens elsewhere; the printed
    URL serves the login page, and the printed token logs in."""
    catalogue = Catalogue.build(CatalogueSettings(prefix=f"demo-console-{unique}", partitions=1))
    await ensure_topics(kafka, catalogue)
    monkeypatch.delenv("ACTIONFLOWS_API_TOKEN", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("ACTIONFLOWS_API_PORT", str(taken.getsockname()[1]))
        output = io.StringIO()
        async with (
            Emulator(EmulatorConfig()) as emulator,
            web_console(
                Console(file=output, width=300),
                bootstrap=kafka,
                catalogue=catalogue,
                connection=emulator_connection(
                    emulator.url, emulator.credentials, emulator.api_version
                ),
                flows_dir=ROOT / "flows",
                worker_url="http://127.0.0.1:1",
                token=SecretStr("demo-token-123"),
            ),
        ):
            printed = output.getvalue()
            assert "the console takes a free port" in printed
            found = re.search(r"Console at (\S+) \(log in with the API token (\S+)\)", printed)
            assert found is not None, printed
            url, token = found.groups()
            assert token == "demo-token-123"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as client:
                async with client.get(url) as page:
                    assert page.url.path == "/console/login"
                async with client.post(
                    url + "login", data={"token": token, "next": "/console/flows"}
                ) as page:
                    assert page.url.path == "/console/flows"
                    assert "10-create-lead-for-unknown-requester.yaml" in await page.text()
