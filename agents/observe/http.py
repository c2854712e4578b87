"""The service's HTTP side: an aiohttp application with a bearer token and an audit log.

:func:`application` builds the app every HTTP server of the service starts from (the worker's
metrics and health endpoints, the run-history API and its console): two middlewares,

- **auth**: every path but ``/healthz`` needs ``Authorization: Bearer <ACTIONFLOWS_API_TOKEN>``
  (compared in constant time). Without a configured token those paths answer 401 and say so:
  nothing is open by accident. The one exception is a :class:`BrowserGuard` set on the app
  (the web console's): requests to its paths that carry no ``Authorization`` header are
  its to decide (a session cookie that proves the token was given once, and a CSRF token).
- **audit**: every write (any method but GET, HEAD and OPTIONS), allowed or refused, is one JSON
  line on the ``actionflows.audit`` logger and, when ``ACTIONFLOWS_AUDIT_LOG`` names a file, in
  that file: when, who (a fingerprint of the token, never the token; or what the guard put in
  ``request[PRINCIPAL]``), method, path, status.

:func:`health_routes` adds ``/healthz``, ``/readyz`` and ``/metrics``. :class:`Server` runs an
app on a host and port (127.0.0.1 unless configured otherwise) and reports the bound port.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr

from agents.observe.health import Health
from agents.settings import HttpSettings

OPEN_PATHS = frozenset({"/healthz"})
READS = frozenset({"GET", "HEAD", "OPTIONS"})

audit_log = logging.getLogger("actionflows.audit")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BrowserGuard(Protocol):
    """Authenticates browser requests to the paths it :meth:`covers` (the console's) instead
    of a bearer header; it sets ``request[PRINCIPAL]`` for the audit log on those it lets through."""

    def covers(self, path: str) -> bool: ...

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse: ...


BROWSER_GUARD = web.AppKey[BrowserGuard]("browser_guard")
PRINCIPAL = web.RequestKey("actionflows.principal", str)  # set by a guard: who, for the audit


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


def error_response(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message}, status)


class Audit:
    """Writes one JSON line per write request to the audit logger and, if given, a file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry).decode()
        audit_log.info("audit %s", line, extra={"audit": entry})
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")


def principal(header: str | None) -> str:
    """Who sent ``header`` (an ``Authorization`` value), for the audit log: a fingerprint."""
    if not header:
        return "anonymous"
    digest = hashlib.sha256(header.encode()).hexdigest()[:12]
    return f"bearer:{digest}"


def application(settings: HttpSettings) -> web.Application:
    """An app with the auth and audit middlewares of ``settings``; add routes to it."""
    token = settings.token
    audit = Audit(settings.audit_log)

    @web.middleware
    async def audited(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in READS:
            return await handler(request)
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            audit.write({
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "principal": request.get(PRINCIPAL)
                or principal(request.headers.get("Authorization")),
                "remote": request.remote,
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "status": status,
                "duration_ms": round((time.perf_counter() - began) * 1000, 3),
            })  # fmt: skip

    @web.middleware
    async def authorised(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        guard = request.app.get(BROWSER_GUARD)
        if (
            guard is not None
            and guard.covers(request.path)
            and "Authorization" not in request.headers
        ):
            return await guard(request, handler)
        refusal = _refusal(token, request.headers.get("Authorization"))
        if refusal is not None:
            response = error_response(401, "unauthorized", refusal)
            response.headers["WWW-Authenticate"] = 'Bearer realm="actionflows"'
            return response
        return await handler(request)

    return web.Application(middlewares=[audited, authorised])


def _refusal(token: SecretStr | None, header: str | None) -> str | None:
    if token is None:
        return "no API token is configured: set ACTIONFLOWS_API_TOKEN (or _FILE) on the server"
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "send Authorization: Bearer <token>"
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        return "the bearer token is not valid"
    return None


def health_routes(app: web.Application, health: Health, registry: CollectorRegistry | None) -> None:
    """``/healthz`` (open), ``/readyz`` and ``/metrics`` (guarded) of ``registry``."""

    async def healthz(request: web.Request) -> web.Response:
        report = health.live()
        return json_response(report.as_dict(), 200 if report.ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        report = await health.ready()
        return json_response(report.as_dict(), 200 if report.ok else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if registry is not None:

        async def scrape(request: web.Request) -> web.Response:
            response = web.Response(body=generate_latest(registry))
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        app.router.add_get("/metrics", scrape)


class Server:
    """Runs an aiohttp app on ``host:port``; ``port`` 0 picks a free one (see :attr:`port`)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> Server:
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise OSError(
                error.errno, f"cannot listen on {self.host}:{self.port}: {error.strerror}"
            ) from error
        self._runner = runner
        server = site._server  # the bound socket gives the port picked for port 0
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
