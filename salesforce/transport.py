"""The transport under :class:`salesforce.client.SalesforceClient`: one aiohttp session per
connection, the cached token, a concurrency bound and per-call deadlines.

``request`` sends with the bearer token and re-authenticates at most once on
INVALID_SESSION_ID (single-flight, via :class:`~salesforce.auth.TokenCache`); every response's
``Sforce-Limit-Info`` updates ``api_usage``. It retries nothing else: a failure is raised, typed
and flagged (``retriable``, ``throttle``, ``ambiguous``), and whoever owns the attempt budget
decides. For a flow step that is the step's retry policy (:mod:`pipeline.retry`), so one step
makes at most ``max_attempts_in_process`` HTTP calls per delivery, not that many times the
transport's own retries. The replayed call after a re-authentication is not an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import urlencode, urlsplit

import aiohttp

from salesforce.auth import AuthFlow, Token, TokenCache, TokenRequest, flow_for
from salesforce.calls import CallInfo, reported
from salesforce.errors import (
    ConnectionLostError,
    RequestTimeoutError,
    ServerError,
    SessionExpiredError,
    TlsError,
    UnknownError,
    error_from_response,
)
from salesforce.limits import ApiUsage, parse_limit_info
from salesforce.settings import ConnectionSettings

USER_AGENT = "actionflows"

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class TransportOptions(TypedDict, total=False):
    """What a caller may inject into a :class:`Transport` (and so into the client over it)."""

    session: aiohttp.ClientSession | None
    flow: AuthFlow | None
    clock: Clock


BodyFor = Callable[[Token], bytes]


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer; :mod:`salesforce.responses` reads its body."""

    status: int
    body: bytes
    content_type: str
    limit_info: str | None
    method: str = "GET"
    date: str | None = None  # the server's clock (HTTP Date), for conditional writes

    @property
    def after_write(self) -> bool:
        """Whether the request could have changed data (anything but a GET)."""
        return self.method != "GET"


class Transport:
    """Session, token, concurrency bound, deadlines and API-usage tracking for one connection.
    ``clock`` is injectable so tests control time; ``session`` lets several connections share
    one aiohttp session (the caller then closes it).
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        flow: AuthFlow | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._tokens = TokenCache(
            flow or flow_for(settings),
            self.send_token_request,
            clock=clock,
            max_age_s=settings.token_max_age_s,
        )
        self._usage: ApiUsage | None = None
        self.api_calls = 0  # REST/SOAP requests sent, token requests excluded
        self._usage_listeners: list[Callable[[ApiUsage], None]] = []
        self._call_listeners: list[Callable[[CallInfo], None]] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Create the aiohttp session now (it needs a running event loop)."""
        self._http()

    async def close(self) -> None:
        await self._tokens.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.settings.verify_tls:
            return False
        if self.settings.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.settings.ca_file))
        return True

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=self.settings.timeout_s, connect=self.settings.connect_timeout_s
            )
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=self.settings.max_concurrency)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session

    # --- what the connection has learnt -----------------------------------------------------------

    @property
    def api_usage(self) -> ApiUsage | None:
        """The latest ``Sforce-Limit-Info`` seen, or ``None`` before the first API call."""
        return self._usage

    @property
    def token(self) -> Token | None:
        return self._tokens.token

    @property
    def token_requests(self) -> int:
        return self._tokens.requests

    @property
    def tokens(self) -> TokenCache:
        return self._tokens

    def now(self) -> float:
        return self._clock()

    async def connect(self) -> Token:
        """Authenticate now (otherwise the first call does) and return the token."""
        return await self._tokens.get()

    def data_url(self, token: Token) -> str:
        return f"{token.instance_url}/services/data/v{self.settings.api_version}"

    # --- transport ----------------------------------------------------------------------------

    @reported
    async def send(
        self, method: str, url: str, *, body: bytes | None, headers: Mapping[str, str]
    ) -> Response:
        """One HTTP exchange; every failure to get a response becomes a TransportError."""
        write = method != "GET"
        where = f"{method} {urlsplit(url).path}"
        try:
            async with (
                self._semaphore,
                self._http().request(method, url, data=body, headers=headers) as resp,
            ):
                payload = await resp.read()
                return Response(
                    resp.status,
                    payload,
                    resp.headers.get("Content-Type", ""),
                    resp.headers.get("Sforce-Limit-Info"),
                    method,
                    resp.headers.get("Date"),
                )
        except TimeoutError:
            raise RequestTimeoutError(
                f"{where} got no answer within {self.settings.timeout_s:g} s", ambiguous=write
            ) from None
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            raise TlsError(f"{where}: TLS failure: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise ConnectionLostError(f"{where}: cannot connect: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLostError(
                f"{where}: {type(exc).__name__}: {exc}", ambiguous=write
            ) from exc

    def on_usage(self, listener: Callable[[ApiUsage], None]) -> None:
        """Call ``listener`` with each new API usage reading (for a budget governor, metrics)."""
        self._usage_listeners.append(listener)

    def on_call(self, listener: Callable[[CallInfo], None]) -> None:
        """Call ``listener`` after every HTTP exchange (metrics, client spans); it must not raise."""
        self._call_listeners.append(listener)

    def _observe(self, response: Response) -> None:
        self.api_calls += 1
        self.record_usage(parse_limit_info(response.limit_info, observed_at=self._clock()))

    def record_usage(self, usage: ApiUsage | None) -> None:
        if usage is None:
            return
        self._usage = usage
        for listener in self._usage_listeners:
            listener(usage)

    async def request(
        self,
        method: str,
        target: str | Callable[[Token], str],
        *,
        body: bytes | BodyFor | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send once with auth, and once more after re-authenticating on INVALID_SESSION_ID.

        ``target`` is a path under ``/services/data/vXX.X`` or a function of the token giving
        the full URL. ``body`` may depend on the token too (SOAP carries it in the envelope).
        A failure is raised (a :class:`SalesforceError`), never retried here.
        """
        reauthenticated = False
        while True:
            token = await self._tokens.get()
            url = target(token) if callable(target) else self.data_url(token) + target
            data = body(token) if callable(body) else body
            all_headers = {
                "Authorization": token.authorization(),
                "Accept": "application/json",
                "Sforce-Call-Options": f"client={USER_AGENT}",
                **({"Content-Type": "application/json"} if data is not None else {}),
                **(headers or {}),
            }
            response = await self.send(method, url, body=data, headers=all_headers)
            self._observe(response)
            if 200 <= response.status < 300:
                return response
            error = error_from_response(response.status, response.body, response.content_type)
            # A 5xx we cannot name may come after the write; a named error (a row lock in a
            # SOAP fault, say) means the transaction was rolled back.
            if method != "GET" and response.status >= 500:
                error.ambiguous = isinstance(error, ServerError | UnknownError)
            if type(error) is SessionExpiredError:
                if not reauthenticated:
                    reauthenticated = True  # not an attempt: the same call, with a new token
                    logger.info("%s: session expired, re-authenticating", self.settings.name)
                    await self._tokens.refresh(token)
                    continue
                error.message = f"{error.message} (still invalid after re-authenticating)"
            raise error

    async def send_token_request(self, request: TokenRequest) -> tuple[int, bytes, str]:
        """POST to the token endpoint once; the answer (any status) is the caller's to read."""
        headers = {
            "Accept": "application/json",
            **request.headers,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        form = urlencode(dict(request.form)).encode()
        response = await self.send("POST", request.url, body=form, headers=headers)
        return response.status, response.body, response.content_type
