"""Who may use the console: the token given once for a session cookie, CSRF on every write,
the API still bearer-only, and every write audited with the session's principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from agents.console.auth import Sessions, safe_next
from agents.history.store import Store
from tests.console.site import TOKEN, Site, console_site, csrf_tokens
from topics.catalogue import Catalogue

NOWHERE = "127.0.0.1:1"  # these pages never reach Kafka


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with console_site(
        tmp_path, Store(":memory:"), bootstrap=NOWHERE, catalogue=Catalogue.build()
    ) as served:
        yield served


async def test_a_page_without_a_session_sends_the_browser_to_the_login_form(site: Site) -> None:
    async with site.client() as client:
        async with client.get("/console/runs?ticket=7", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/login?next=/console/runs?ticket%3D7"
        async with client.get("/", allow_redirects=False) as response:
            assert response.status == 303
        async with client.get("/console/login") as response:
            html = await response.text()
            assert response.status == 200
            assert '<label for="token">API token</label>' in html
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        async with client.get("/console/static/console.css") as response:
            assert response.status == 200
            assert response.content_type == "text/css"


async def test_the_token_buys_a_strict_http_only_session_cookie(site: Site) -> None:
    """A wrong token is refused and sets nothing; the right one sets a cookie scripts cannot
    read and other sites cannot send, which holds a random id, not the token."""
    async with site.client() as client:
        refused = await site.login(client, token="guess")
        assert refused.status == 401
        assert "Set-Cookie" not in refused.headers
        response = await site.login(client)
        assert response.status == 303
        assert response.headers["Location"] == "/console/runs"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert TOKEN not in cookie
        async with client.get("/console/runs") as page:
            assert page.status == 200
            assert TOKEN not in await page.text()


async def test_the_session_cookie_does_not_open_the_api(site: Site) -> None:
    """The cookie is for the console's pages: /api/ still needs the bearer header."""
    async with site.client() as client:
        await site.login(client)
        async with client.get("/api/runs") as response:
            assert response.status == 401
        async with client.get(
            "/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status == 200


async def test_a_write_needs_its_own_forms_csrf_token_and_this_sites_origin(site: Site) -> None:
    """Logout without a token, with another form's token, or from another origin is refused
    and the session lives on; with its own token it ends the session. Each try is audited
    under the session's principal, never the token."""
    async with site.client() as client:
        await site.login(client)
        async with client.get("/console/runs") as page:
            tokens = csrf_tokens(await page.text())
        mine = tokens["/console/logout"]
        attempts = [
            ({}, {}),
            ({"csrf": "0" * 64}, {}),
            ({"csrf": mine}, {"Origin": "http://evil.example"}),
        ]
        for data, headers in attempts:
            async with client.post(
                "/console/logout", data=data, headers=headers, allow_redirects=False
            ) as response:
                assert response.status == 403
        async with client.get("/console/runs", allow_redirects=False) as page:
            assert page.status == 200  # still logged in
        async with client.post(
            "/console/logout", data={"csrf": mine}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with client.get("/console/runs", allow_redirects=False) as page:
            assert page.status == 303  # the session is gone
        async with client.post(
            "/console/logout", data={"csrf": mine}, allow_redirects=False
        ) as response:
            assert response.status == 401  # a write without a session
    lines = [orjson.loads(line) for line in site.audit.read_text().splitlines()]
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/console/login", 303),
        ("/console/logout", 403),
        ("/console/logout", 403),
        ("/console/logout", 403),
        ("/console/logout", 303),
        ("/console/logout", 401),
    ]
    principals = {line["principal"] for line in lines[:5]}
    assert len(principals) == 1
    (principal,) = principals
    assert principal.startswith("bearer:")
    assert " session:" in principal
    assert TOKEN not in site.audit.read_text()


async def test_a_csrf_token_is_bound_to_its_form(tmp_path: Path) -> None:
    """Two forms of one session get different tokens; one session's token is no good in another."""
    sessions = Sessions(SecretStr(TOKEN))
    one, other = sessions.login(TOKEN), sessions.login(TOKEN)
    assert not isinstance(one, str)
    assert not isinstance(other, str)
    assert one.csrf("/console/logout") != one.csrf("/console/dead-letters/0:1/redrive")
    assert one.csrf("/console/logout") != other.csrf("/console/logout")


async def test_without_a_configured_token_nobody_logs_in(tmp_path: Path) -> None:
    async with (
        console_site(
            tmp_path, Store(":memory:"), bootstrap=NOWHERE, catalogue=Catalogue.build(), token=None
        ) as site,
        site.client() as client,
    ):
        response = await site.login(client, token="")
        assert response.status == 401
        async with client.post("/console/login", data={"token": "anything"}) as page:
            assert "no API token is configured" in await page.text()


def test_sessions_expire() -> None:
    now = [0.0]
    sessions = Sessions(SecretStr(TOKEN), lifetime_s=10, clock=lambda: now[0])
    session = sessions.login(TOKEN)
    assert not isinstance(session, str)
    assert sessions.get(session.id) is session
    now[0] = 10.0
    assert sessions.get(session.id) is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/runs?ticket=1", "/console/runs?ticket=1"),
        ("//evil.example/console/", "/console/"),
        ("https://evil.example/console/", "/console/"),
        ("/api/runs", "/console/"),
        (None, "/console/"),
    ],
)
def test_after_login_the_browser_only_goes_to_a_console_page(
    target: str | None, expected: str
) -> None:
    assert safe_next(target) == expected
