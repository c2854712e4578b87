"""``Emulator``: starts and stops one emulated org on a local port, and exposes its state to tests.

async with Emulator(EmulatorConfig(seed=1)) as emu:
    emu.url, emu.api_version, emu.credentials
    emu.records("Lead"); emu.call_counts(); emu.set_faults([...]); emu.expire_tokens()
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import build_app
from .config import DemoCredentials, EmulatorConfig
from .credentials import demo_credentials, tls_material
from .faults import FaultRule
from .org import Org


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.credentials: DemoCredentials = self.config.credentials or demo_credentials(
            self.config.seed
        )
        self._org = Org(self.config, self.credentials)
        self._runner: web.AppRunner | None = None
        self._tmp: Path | None = None
        self.tls_certificate_pem: str | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Emulator:
        if self._runner is not None:
            return self
        self._org.stopping.clear()
        app = build_app(self._org)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        ssl_context = self._server_ssl() if self.config.tls else None
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=ssl_context
        )
        await site.start()
        server = site._server  # the bound socket tells us the port picked for port=0
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        scheme = "https" if self.config.tls else "http"
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = (self.config.public_url or f"{scheme}://{host}:{port}").rstrip("/")
        self._org.base_url = self.url
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._org.stopping.set()  # releases requests held by "hang" faults
        await self._runner.cleanup()
        self._runner = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _server_ssl(self) -> ssl.SSLContext:
        cert_pem, key_pem = tls_material(self.config.host)
        self.tls_certificate_pem = cert_pem
        self._tmp = Path(tempfile.mkdtemp(prefix="sf-emulator-"))
        (self._tmp / "cert.pem").write_text(cert_pem)
        (self._tmp / "key.pem").write_text(key_pem)
        (self._tmp / "key.pem").chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._tmp / "cert.pem", self._tmp / "key.pem")
        return context

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context that trusts this emulator's self-signed certificate (None without TLS)."""
        if self.tls_certificate_pem is None:
            return None
        return ssl.create_default_context(cadata=self.tls_certificate_pem)

    # -- the contract tests use --------------------------------------------------------------

    @property
    def api_version(self) -> str:
        return self.config.api_version

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Current (non-deleted) records of ``sobject``, as stored."""
        return self._org.records(sobject, include_deleted=False)

    def all_records(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of ``sobject``, soft-deleted ones included (IsDeleted=true)."""
        return self._org.records(sobject, include_deleted=True)

    def insert(self, sobject: str, fields: dict[str, Any]) -> str:
        """Seed a record directly, bypassing validation and rules; returns its 18-char Id."""
        return self._org.store.insert_raw(sobject, dict(fields))

    def call_counts(self) -> dict[str, int]:
        """Requests per ``"METHOD route"``, plus ``api_calls`` counted against the daily limit."""
        counts = dict(self._org.counts)
        counts.setdefault("api_calls", 0)
        return counts

    def api_usage(self) -> tuple[int, int]:
        """(used in the rolling 24 h, daily limit) as ``Sforce-Limit-Info`` reports them."""
        return self._org.budget.used(), self._org.budget.daily_limit

    def set_faults(self, rules: list[FaultRule] | tuple[FaultRule, ...]) -> None:
        self._org.faults.replace(tuple(rules))

    def expire_tokens(self) -> None:
        self._org.oauth.expire_all()

    def reset(self) -> None:
        self._org.reset()

    def advance_clock(self, seconds: float) -> None:
        """Move the org's clock forward (token expiry, the rolling day, locators, JWT exp)."""
        self._org.clock_offset += seconds

    def mint_refresh_token(self) -> str:
        """A refresh token, as an earlier web-server flow would have left the integration user."""
        return self._org.oauth.mint_refresh_token()

    def issue_access_token(self) -> str:
        """A valid access token without an OAuth round trip (for tests not about OAuth)."""
        return self._org.oauth.issue(self.credentials.client_id).token

    async def wait_for_in_flight(self, count: int) -> None:
        """Return once at least ``count`` requests are being processed (wrap in a timeout)."""
        async with self._org.in_flight_changed:
            await self._org.in_flight_changed.wait_for(
                lambda: len(self._org.budget.in_flight) >= count
            )
