"""How a browser proves it holds the API's token, and why a form post is its user's own.

The API's bearer token (``ACTIONFLOWS_API_TOKEN``) is the only credential; the console adds no
other. A browser cannot put a bearer header on links and forms, so it gives the token once:

- ``POST /console/login`` takes the token from a form and compares it with the configured one
  in constant time. When it holds, the console starts a **session**: a random 256-bit id kept in
  this process's memory (never derived from the token, which is neither stored in the browser nor
  rendered nor logged), sent as the cookie ``actionflows_console`` with ``HttpOnly`` (no script
  reads it), ``SameSite=Strict`` (no other site's page makes the browser send it), ``Path=/`` and
  ``Secure`` when the request came over HTTPS. A session ends at logout, after
  :data:`SESSION_LIFETIME_S`, or when the process stops.
- Every form carries a **CSRF token**: the HMAC-SHA256 of the form's action path under a random
  key of the session's own. A write is refused (403) unless its token matches its path under
  that key, and unless its ``Origin``, when the browser sends one, is this server's. A token
  from one form is no good on another, and no good in another session.

:class:`ConsoleGuard` is the app's :class:`~agents.observe.http.BrowserGuard`: the auth
middleware hands it every request to the console's paths that carries no ``Authorization``
header. It lets the login page and the style sheet through, sends a browser without a session
to the login page (a write without one gets 401), checks CSRF on writes, names the session as
the audit log's principal, and puts security headers on every answer (a CSP that allows no
script at all, no framing, no caching, no referrer to other sites).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import SecretStr
from yarl import URL

from agents.observe.http import PRINCIPAL, READS, Handler, principal

PREFIX = "/console"
LOGIN = f"{PREFIX}/login"
LOGOUT = f"{PREFIX}/logout"
STATIC = f"{PREFIX}/static/"
COOKIE = "actionflows_console"
CSRF_FIELD = "csrf"
SESSION_LIFETIME_S = 8 * 3600
MAX_SESSIONS = 1000  # the oldest goes first: a login loop cannot grow the table without end

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: with it Chromium sends "Origin: null" on a form's POST, which the
    # origin check must refuse. same-origin keeps search URLs (ticket ids) in the house.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf_key: bytes
    expires_at: float
    principal: str  # for the audit log: the token's fingerprint and the session's

    def csrf(self, action: str) -> str:
        """The CSRF token of the form that posts to ``action`` (a path)."""
        return hmac.new(self.csrf_key, action.encode(), hashlib.sha256).hexdigest()


SESSION = web.RequestKey("actionflows.console.session", Session)


class Sessions:
    """The console's sessions, in memory."""

    def __init__(
        self,
        token: SecretStr | None,
        *,
        lifetime_s: float = SESSION_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def login(self, given: str) -> Session | str:
        """A new session when ``given`` is the token; otherwise why not."""
        if self._token is None:
            return "no API token is configured: set ACTIONFLOWS_API_TOKEN (or _FILE) on the server"
        expected = self._token.get_secret_value()
        if not given or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return "that is not the API token"
        self._forget_expired()
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        fingerprint = hashlib.sha256(session_id.encode()).hexdigest()[:12]
        session = Session(
            id=session_id,
            csrf_key=secrets.token_bytes(32),
            expires_at=self._clock() + self._lifetime_s,
            principal=f"{principal('Bearer ' + expected)} session:{fingerprint}",
        )
        self._sessions[session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session.id]
            return None
        return session

    def end(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for session_id in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[session_id]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a console path, never another site (``//evil``)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return f"{PREFIX}/"


def set_cookie(response: web.StreamResponse, request: web.Request, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=SESSION_LIFETIME_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


class ConsoleGuard:
    """The gate of every console path (see the module's docstring)."""

    def __init__(
        self, sessions: Sessions, refused: Callable[[web.Request, int, str], web.Response]
    ) -> None:
        """``refused`` renders a refusal page (status, message)."""
        self.sessions = sessions
        self.refused = refused

    def covers(self, path: str) -> bool:
        return path in ("/", PREFIX) or path.startswith(PREFIX + "/")

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as error:  # aiohttp's own 404 and 405 answers
            error.headers.update(HEADERS)
            raise
        response.headers.update(HEADERS)
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        writes = request.method not in READS
        if request.path == LOGIN or request.path.startswith(STATIC):
            if writes and not _same_origin(request):
                return self.refused(request, 403, "This form was sent from another site.")
            return await handler(request)
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if writes:
                return self.refused(request, 401, "Your session has ended: log in again.")
            target = request.path_qs if request.path.startswith(PREFIX + "/") else None
            login = URL(LOGIN).with_query(next=safe_next(target))
            return web.Response(status=303, headers={"Location": str(login)})
        request[PRINCIPAL] = session.principal
        request[SESSION] = session
        if writes:
            if not _same_origin(request):
                return self.refused(request, 403, "This form was sent from another site.")
            form = await request.post()
            given = form.get(CSRF_FIELD)
            if not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), session.csrf(request.path).encode()
            ):
                return self.refused(
                    request, 403, "This form is missing its CSRF token or has another form's."
                )
        return await handler(request)


def _same_origin(request: web.Request) -> bool:
    """Whether a write's ``Origin`` (when sent) names this server's host. The scheme is not
    compared: behind a proxy that ends TLS the browser says https and this server sees http."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # browsers send it on every cross-site POST; its absence is not one
    return urlsplit(origin).netloc == request.host
