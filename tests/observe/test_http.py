"""The HTTP side over real HTTP: loopback by default, a bearer token on all but /healthz, writes
audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from agents.observe.health import Check, Health
from agents.observe.http import Server, application, health_routes
from agents.settings import HistorySettings, HttpSettings, ObserveSettings

TOKEN = "s3cret-token-for-tests"


async def _ok() -> Check:
    return Check(True, "fine")


async def _down() -> Check:
    return Check(False, "the broker did not answer within 5s")


async def _serve(settings: HttpSettings, ready_ok: bool = True) -> Server:
    registry = CollectorRegistry()
    Counter("actionflows_test", "a counter", registry=registry).inc()
    health = Health(
        live={"event_loop": lambda: Check(True, "turning")},
        ready={"broker": _ok if ready_ok else _down},
    )
    app = application(settings)
    health_routes(app, health, registry)

    async def write(request: web.Request) -> web.Response:
        return web.json_response({"done": True})

    app.router.add_post("/api/things", write)
    return await Server(app, settings.host, settings.port).start()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = HttpSettings(port=0, token=SecretStr(TOKEN), audit_log=tmp_path / "audit.log")
    running = await _serve(settings)
    yield running
    await running.stop()


async def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers) as response,
    ):
        return response.status, await response.read()


def test_everything_binds_to_loopback_by_default() -> None:
    assert HttpSettings().host == "127.0.0.1"
    observe = ObserveSettings.from_env({})
    assert observe.http is not None
    assert (observe.http.host, observe.http.port) == ("127.0.0.1", 6066)
    history = HistorySettings.from_env({})
    assert (history.http.host, history.http.port) == ("127.0.0.1", 6067)
    assert history.api_url == "http://127.0.0.1:6067"
    assert ObserveSettings.from_env({"ACTIONFLOWS_HTTP_PORT": "off"}).http is None


async def test_only_healthz_answers_without_the_token(server: Server) -> None:
    status, body = await _get(server.url + "/healthz")
    assert status == 200
    assert orjson.loads(body)["checks"]["event_loop"] == {"ok": True, "detail": "turning"}
    for path in ("/readyz", "/metrics"):
        assert (await _get(server.url + path))[0] == 401
        assert (await _get(server.url + path, "wrong"))[0] == 401
        assert (await _get(server.url + path, TOKEN))[0] == 200
    _, metrics = await _get(server.url + "/metrics", TOKEN)
    assert b"actionflows_test_total 1.0" in metrics


async def test_without_a_configured_token_nothing_but_healthz_opens(tmp_path: Path) -> None:
    running = await _serve(HttpSettings(port=0))
    try:
        assert (await _get(running.url + "/healthz"))[0] == 200
        status, body = await _get(running.url + "/metrics", "anything")
        assert status == 401
        assert "ACTIONFLOWS_API_TOKEN" in orjson.loads(body)["message"]
    finally:
        await running.stop()


async def test_readyz_says_why_it_is_not_ready(tmp_path: Path) -> None:
    running = await _serve(HttpSettings(port=0, token=SecretStr(TOKEN)), ready_ok=False)
    try:
        status, body = await _get(running.url + "/readyz", TOKEN)
    finally:
        await running.stop()
    assert status == 503
    assert orjson.loads(body) == {
        "status": "failing",
        "checks": {"broker": {"ok": False, "detail": "the broker did not answer within 5s"}},
    }


async def test_every_write_is_audited_and_reads_are_not(server: Server, tmp_path: Path) -> None:
    """Allowed and refused writes each leave a line naming who (a fingerprint), what, how."""
    await _get(server.url + "/metrics", TOKEN)
    assert (await _get(server.url + "/api/things", TOKEN, "POST"))[0] == 200
    assert (await _get(server.url + "/api/things", None, "POST"))[0] == 401
    lines = [orjson.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", "/api/things", 200),
        ("POST", "/api/things", 401),
    ]
    assert lines[0]["principal"].startswith("bearer:")
    assert lines[1]["principal"] == "anonymous"
    assert TOKEN not in (tmp_path / "audit.log").read_text()
