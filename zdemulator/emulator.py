"""A small local emulator of the Zendesk Support API's user and organization lookups.

For tests, the demo and the benchmarks only: production code never imports it
(``tests/test_layout.py`` checks). It listens on a free loopback port over real HTTP, checks
credentials the way Zendesk does (an API token as Basic ``{email}/token:{token}``, or an OAuth
Bearer token), counts requests against a per-minute rate limit (429 with Retry-After when
exceeded) and can be told to fail::

    async with ZendeskEmulator(users=[{"id": 90001, "name": "Nora Quist", ...}]) as zd:
        client = ZendeskClient(zd.settings())          # API token auth
        zd.fail_next(503, times=2)                     # the next two calls answer 503
        zd.fail_next(429, retry_after_s=1)             # rate limited, Retry-After: 1
        zd.latency_s = 0.5                             # every answer takes half a second
        zd.calls                                       # [("users", ["90001", ...]), ...]
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from zdemulator.app import build_app, error
from zendesk.settings import ApiToken, OAuthToken, ZendeskSettings

EMAIL = "integration@example.com"
API_TOKEN = "emulator-api-token"  # noqa: S105 - the emulator's demo credential
OAUTH_TOKEN = "emulator-oauth-token"  # noqa: S105 - the emulator's demo credential


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int
    retry_after_s: float | None


class ZendeskEmulator:
    def __init__(
        self,
        *,
        users: Iterable[Mapping[str, Any]] = (),
        organizations: Iterable[Mapping[str, Any]] = (),
        rate_limit: int = 700,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.organizations: dict[str, dict[str, Any]] = {}
        for user in users:
            self.add_user(**user)
        for org in organizations:
            self.add_organization(**org)
        self.rate_limit = rate_limit
        self.latency_s = 0.0
        self.calls: list[tuple[str, list[str]]] = []
        self.host = host
        self.port = port
        self.url = ""
        self._faults: deque[_Fault] = deque()
        self._window = (0, 0)  # (minute, requests in it)
        self._runner: web.AppRunner | None = None

    # -- data --------------------------------------------------------------------------------

    def add_user(self, *, id: int, name: str, email: str | None = None, **fields: Any) -> None:
        self.users[str(id)] = {
            "id": id,
            "name": name,
            "email": email,
            "phone": None,
            "organization_id": None,
            "role": "end-user",
            "active": True,
            "verified": True,
            "created_at": "2026-01-05T09:00:00Z",
            "updated_at": "2026-01-05T09:00:00Z",
            **fields,
        }

    def add_organization(self, *, id: int, name: str, **fields: Any) -> None:
        self.organizations[str(id)] = {
            "id": id,
            "name": name,
            "domain_names": [],
            "created_at": "2026-01-05T09:00:00Z",
            "updated_at": "2026-01-05T09:00:00Z",
            **fields,
        }

    # -- faults ------------------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, retry_after_s: float | None = None) -> None:
        """The next ``times`` calls answer ``status`` (401, 403, 404, 429, 500, 502, 503) in
        Zendesk's shape; a 429 without ``retry_after_s`` says Retry-After: 60."""
        if status == 429 and retry_after_s is None:
            retry_after_s = 60
        self._faults.extend(_Fault(status, retry_after_s) for _ in range(times))

    @property
    def remaining(self) -> int:
        minute, used = self._window
        return self.rate_limit - used if minute == int(time.time() // 60) else self.rate_limit

    async def admit(self, credentials: tuple[str, str]) -> web.Response | None:
        """None when the call may proceed, else the error answer (after the latency)."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if credentials not in {("basic", f"{EMAIL}/token:{API_TOKEN}"), ("bearer", OAUTH_TOKEN)}:
            return error(401, self)
        now = time.time()
        minute = int(now // 60)
        used = self._window[1] + 1 if self._window[0] == minute else 1
        self._window = (minute, used)
        if self._faults:
            fault = self._faults.popleft()
            return error(fault.status, self, retry_after_s=fault.retry_after_s)
        if used > self.rate_limit:
            return error(429, self, retry_after_s=(minute + 1) * 60 - now)
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    def settings(self, *, oauth: bool = False, timeout_s: float = 5.0) -> ZendeskSettings:
        """Client settings for this emulator, with an API token (default) or OAuth."""
        auth = (
            OAuthToken(SecretStr(OAUTH_TOKEN)) if oauth else ApiToken(EMAIL, SecretStr(API_TOKEN))
        )
        return ZendeskSettings(base_url=self.url, auth=auth, timeout_s=timeout_s)

    async def start(self) -> ZendeskEmulator:
        self._runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ZendeskEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
