"""A console over a history store, served for real on localhost, and a browser-less client."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from agents.console import ConsoleConfig, mount
from agents.history.api import create_app
from agents.history.indexer import History, Indexer
from agents.history.store import Store
from agents.observe.health import Check, Health
from agents.observe.http import Server
from agents.settings import ConsoleSettings, HttpSettings
from salesforce.settings import ConnectionSettings
from topics.catalogue import Catalogue

TOKEN = "console-test-token"
_CSRF = re.compile(r'action="(?P<action>[^"]+)"[^>]*>\s*<input type="hidden" name="csrf" '
                   r'value="(?P<token>[0-9a-f]+)"')  # fmt: skip


@dataclass
class Site:
    url: str
    audit: Path

    def client(self) -> aiohttp.ClientSession:
        """A client that keeps cookies for 127.0.0.1 (aiohttp's default jar drops them for IPs)
        and follows no redirect unless told."""
        return aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(
        self, client: aiohttp.ClientSession, token: str = TOKEN
    ) -> aiohttp.ClientResponse:
        async with client.post(
            "/console/login", data={"token": token, "next": "/console/runs"}, allow_redirects=False
        ) as response:
            await response.read()
            return response


def csrf_tokens(html: str) -> dict[str, str]:
    """The CSRF token of each form on a page, by the form's action."""
    return {m["action"]: m["token"] for m in _CSRF.finditer(html)}


@contextlib.asynccontextmanager
async def console_site(
    tmp_path: Path,
    store: Store,
    *,
    bootstrap: str,
    catalogue: Catalogue,
    token: str | None = TOKEN,
    settings: ConsoleSettings | None = None,
    connection: ConnectionSettings | None = None,
) -> AsyncIterator[Site]:
    """The run-history app with the console mounted, as ``actionflows console`` builds it,
    over ``store`` (the indexer is never started: the test fills the store)."""
    history = History(store)
    indexer = Indexer(history, bootstrap, catalogue)
    http = HttpSettings(
        port=0, token=SecretStr(token) if token else None, audit_log=tmp_path / "audit.log"
    )
    app = create_app(http, history, indexer, health=Health({"ok": lambda: Check(True, "ok")}))
    mount(
        app,
        ConsoleConfig(settings or ConsoleSettings(flows_dir=tmp_path / "flows"), connection),
        history=history,
        indexer=indexer,
        bootstrap_servers=bootstrap,
        catalogue=catalogue,
        token=http.token,
    )
    server = await Server(app, "127.0.0.1", 0).start()
    try:
        yield Site(server.url, tmp_path / "audit.log")
    finally:
        await server.stop()
        history.close()
