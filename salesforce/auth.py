"""OAuth 2.0 for a service account: the token request each flow makes, and the cached token.

The flows are protocol logic only (data in, data out, like httpx's ``auth_flow``): each builds a
:class:`TokenRequest` from the clock, and :func:`parse_token_response` turns the answer into a
:class:`Token` or an :mod:`~salesforce.errors` exception. :class:`TokenCache` is the one stateful
piece: one token per connection and single-flight re-authentication, sending through whatever
``fetch`` coroutine the client gives it.

Salesforce tokens carry no ``expires_in``: a client learns of expiry from a 401
INVALID_SESSION_ID, re-authenticates once, and replays. None of the server-to-server flows
(JWT bearer, client credentials, password) issue a refresh token; "refreshing" means asking again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import jwt
import orjson
from pydantic import SecretStr

from salesforce.errors import AuthError, SalesforceError, TokenRateLimitedError, error_from_response
from salesforce.settings import AuthMethod, ConnectionSettings

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A form POST to the token endpoint. The form holds secrets, so it stays out of reprs."""

    url: str
    form: Mapping[str, str] = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and what the token response says about the session."""

    access_token: SecretStr
    instance_url: str
    id_url: str
    scopes: frozenset[str]
    obtained_at: float  # the client's clock when the response arrived
    issued_at: float | None = None  # Salesforce's clock, seconds (it sends milliseconds)
    token_type: str = "Bearer"  # noqa: S105 - the scheme name
    refresh_token: SecretStr | None = None

    @property
    def org_id(self) -> str | None:
        parts = self.id_url.rstrip("/").split("/")
        return parts[-2] if len(parts) >= 2 and parts[-3:-2] == ["id"] else None

    @property
    def user_id(self) -> str | None:
        parts = self.id_url.rstrip("/").split("/")
        return parts[-1] if len(parts) >= 2 and parts[-3:-2] == ["id"] else None

    def authorization(self) -> str:
        return f"{self.token_type or 'Bearer'} {self.access_token.get_secret_value()}"


def parse_token_response(status: int, body: bytes, content_type: str, *, now: float) -> Token:
    """A token endpoint answer: a :class:`Token` on 200, otherwise the matching error. Any
    body that is not the documented object of strings is an :class:`AuthError`."""
    if status != 200:
        raise error_from_response(status, body, content_type)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AuthError("token endpoint returned a body that is not JSON", status=status) from None
    if not isinstance(data, dict):
        raise AuthError("token endpoint returned JSON that is not an object", status=status)
    fields = {key: value for key, value in data.items() if isinstance(value, str)}
    missing = [key for key in ("access_token", "instance_url") if not fields.get(key)]
    if missing:
        raise AuthError(f"token response lacks {', '.join(missing)}", status=status)
    instance_url = fields["instance_url"].rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", instance_url):
        raise AuthError("token response has an instance_url that is not a site", status=status)
    issued_at = data.get("issued_at")
    refresh = fields.get("refresh_token")
    return Token(
        access_token=SecretStr(fields["access_token"]),
        instance_url=instance_url,
        id_url=fields.get("id", ""),
        scopes=frozenset(fields.get("scope", "").split()),
        obtained_at=now,
        issued_at=int(str(issued_at)) / 1000 if _is_millis(issued_at) else None,
        token_type=fields.get("token_type") or "Bearer",
        refresh_token=SecretStr(refresh) if refresh else None,
    )


def _is_millis(value: object) -> bool:
    """Salesforce sends ``issued_at`` as a string of epoch milliseconds."""
    return isinstance(value, str | int) and re.fullmatch(r"[0-9]{1,18}", str(value)) is not None


class AuthFlow(Protocol):
    """One OAuth grant: how to ask for a token, and what to remember from the answer."""

    method: AuthMethod

    def token_request(self, now: float) -> TokenRequest: ...

    def accept(self, token: Token) -> None:
        """Called with each new token (refresh-token rotation hands out a new refresh token)."""
        ...


def _secret(value: SecretStr | None, what: str) -> str:
    if value is None:
        raise AuthError(f"no {what} configured for this connection")
    return value.get_secret_value()


@dataclass(slots=True)
class JwtBearerFlow:
    """RS256 assertion with iss = consumer key, sub = username, aud = login/test, exp ≤ 5 min.

    Needs the integration user's profile or permission set pre-authorised on the connected app,
    or Salesforce answers invalid_grant "user hasn't approved this consumer".
    """

    token_url: str
    client_id: str
    username: str
    private_key: SecretStr = field(repr=False)
    audience: str
    lifetime_s: int = 180
    method: AuthMethod = AuthMethod.JWT

    def assertion(self, now: float) -> str:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(now) + self.lifetime_s,  # seconds, not milliseconds
        }
        try:
            return jwt.encode(claims, self.private_key.get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            # Say what is wrong without echoing the key material.
            raise AuthError(f"cannot sign the JWT assertion: {type(exc).__name__}") from None

    def token_request(self, now: float) -> TokenRequest:
        form = {"grant_type": JWT_GRANT, "assertion": self.assertion(now)}
        return TokenRequest(self.token_url, form)

    def accept(self, token: Token) -> None:
        return None


@dataclass(slots=True)
class ClientCredentialsFlow:
    """Consumer key and secret for a token as the app's run-as user. Needs the My Domain URL."""

    token_url: str
    client_id: str
    client_secret: SecretStr = field(repr=False)
    method: AuthMethod = AuthMethod.CLIENT_CREDENTIALS

    def token_request(self, now: float) -> TokenRequest:
        pair = f"{self.client_id}:{self.client_secret.get_secret_value()}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
        return TokenRequest(
            self.token_url, {"grant_type": "client_credentials"}, {"Authorization": basic}
        )

    def accept(self, token: Token) -> None:
        return None


@dataclass(slots=True)
class RefreshTokenFlow:
    """A stored refresh token (from a one-time web-server login). Follows token rotation."""

    token_url: str
    client_id: str
    refresh_token: SecretStr = field(repr=False)
    client_secret: SecretStr | None = field(default=None, repr=False)
    method: AuthMethod = AuthMethod.REFRESH_TOKEN

    def token_request(self, now: float) -> TokenRequest:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token.get_secret_value(),
            "client_id": self.client_id,
        }
        if self.client_secret is not None:
            form["client_secret"] = self.client_secret.get_secret_value()
        return TokenRequest(self.token_url, form)

    def accept(self, token: Token) -> None:
        if token.refresh_token is not None:  # rotation: the old one is now invalid
            self.refresh_token = token.refresh_token


@dataclass(slots=True)
class PasswordFlow:
    """Legacy username-password flow (password + security token). Prefer JWT bearer."""

    token_url: str
    client_id: str
    client_secret: SecretStr = field(repr=False)
    username: str
    password: SecretStr = field(repr=False)
    method: AuthMethod = AuthMethod.PASSWORD

    def token_request(self, now: float) -> TokenRequest:
        form = {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "username": self.username,
            "password": self.password.get_secret_value(),
        }
        return TokenRequest(self.token_url, form)

    def accept(self, token: Token) -> None:
        return None


def flow_for(settings: ConnectionSettings) -> AuthFlow:
    """The flow a connection's settings ask for (settings already checked the secrets exist)."""
    url = settings.login_url + TOKEN_PATH
    if settings.auth is AuthMethod.JWT:
        return JwtBearerFlow(
            url,
            settings.client_id,
            settings.username or "",
            settings.private_key or SecretStr(""),
            settings.jwt_audience,
            settings.jwt_lifetime_s,
        )
    if settings.auth is AuthMethod.CLIENT_CREDENTIALS:
        return ClientCredentialsFlow(
            url, settings.client_id, settings.client_secret or SecretStr("")
        )
    if settings.auth is AuthMethod.REFRESH_TOKEN:
        return RefreshTokenFlow(
            url, settings.client_id, settings.refresh_token or SecretStr(""), settings.client_secret
        )
    return PasswordFlow(
        url,
        settings.client_id,
        settings.client_secret or SecretStr(""),
        settings.username or "",
        settings.password or SecretStr(""),
    )


Fetch = Callable[[TokenRequest], Awaitable[tuple[int, bytes, str]]]


class TokenCache:
    """One token per connection; concurrent re-authentications collapse into one request.

    ``refresh(stale)`` names the token that failed. If the cache already holds a different one,
    someone else has re-authenticated since and that token is returned; otherwise every caller
    naming the same stale token awaits one shared token request (and shares its failure).
    A refused login is remembered for ``failure_cooldown_s``: calls in that window fail at once
    with the same error (``retry_after`` set) instead of asking the token endpoint again.
    """

    def __init__(
        self,
        flow: AuthFlow,
        fetch: Fetch,
        *,
        clock: Callable[[], float],
        max_age_s: float | None = None,
        failure_cooldown_s: float = 5.0,
    ) -> None:
        self._flow = flow
        self._fetch = fetch
        self._clock = clock
        self._max_age_s = max_age_s
        self._cooldown_s = failure_cooldown_s
        self._failure: tuple[float, AuthError] | None = None
        self._token: Token | None = None
        self._inflight: asyncio.Future[Token] | None = None
        self.requests = 0  # token requests sent, for metrics and tests

    @property
    def token(self) -> Token | None:
        return self._token

    async def get(self) -> Token:
        token = self._token
        if token is None or self._too_old(token):
            return await self.refresh(token)
        return token

    def _too_old(self, token: Token) -> bool:
        return self._max_age_s is not None and self._clock() - token.obtained_at > self._max_age_s

    async def refresh(self, stale: Token | None) -> Token:
        if self._token is not None and self._token is not stale:
            return self._token
        if self._failure is not None:
            # A refused login (bad key, unapproved user) will be refused again: do not hammer
            # the token endpoint at event rate, which ends in rate_limit_exceeded.
            failed_at, error = self._failure
            wait = self._cooldown_s - (self._clock() - failed_at)
            if wait > 0:
                raise type(error)(
                    error.message,
                    error_code=error.error_code,
                    status=error.status,
                    retry_after=wait,
                )
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._request_token())
            self._inflight.add_done_callback(self._finished)
        return await asyncio.shield(self._inflight)

    def _finished(self, future: asyncio.Future[Token]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here so a failure nobody awaits is not logged twice

    async def _request_token(self) -> Token:
        self.requests += 1
        request = self._flow.token_request(self._clock())
        status, body, content_type = await self._fetch(request)
        try:
            token = parse_token_response(status, body, content_type, now=self._clock())
        except AuthError as exc:
            if not isinstance(exc, TokenRateLimitedError):  # a refusal that will repeat
                self._failure = (self._clock(), exc)
            raise
        self._failure = None
        self._flow.accept(token)
        self._token = token
        return token

    def clear(self) -> None:
        """Forget the token and any remembered login failure (force a fresh login)."""
        self._token = None
        self._failure = None

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError, SalesforceError):
                await self._inflight
