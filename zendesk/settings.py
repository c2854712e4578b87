"""Typed, immutable settings for the Zendesk Support API. The only module of ``zendesk`` that
reads the environment or files.

Zendesk accepts an API token (HTTP Basic ``{email}/token:{token}``) or an OAuth access token
(``Authorization: Bearer {token}``) (developer.zendesk.com/api-reference/introduction/
security-and-auth). Secrets are :class:`pydantic.SecretStr`: they print as ``**********``.

Environment (all optional; without a URL there is no Zendesk connection)::

    ACTIONFLOWS_ZENDESK_URL            https://{subdomain}.zendesk.com
    ACTIONFLOWS_ZENDESK_SUBDOMAIN      instead of the URL: {subdomain}
    ACTIONFLOWS_ZENDESK_EMAIL          the agent an API token acts as
    ACTIONFLOWS_ZENDESK_API_TOKEN      | or _API_TOKEN_FILE    a path to a file holding it
    ACTIONFLOWS_ZENDESK_OAUTH_TOKEN    | or _OAUTH_TOKEN_FILE  (give an API token or OAuth, not both)
    ACTIONFLOWS_ZENDESK_TIMEOUT_S      one request's limit, default 5
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from zendesk.errors import ConfigurationError

PREFIX = "ACTIONFLOWS_ZENDESK_"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token used on behalf of an agent's email address."""

    email: str
    token: SecretStr

    def authorization(self) -> str:
        pair = f"{self.email}/token:{self.token.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, slots=True)
class OAuthToken:
    """An OAuth access token (scope ``users:read`` or ``read`` suffices for the lookups)."""

    access_token: SecretStr

    def authorization(self) -> str:
        return f"Bearer {self.access_token.get_secret_value()}"


@dataclass(frozen=True, slots=True)
class ZendeskSettings:
    base_url: str
    auth: ApiToken | OAuthToken
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ConfigurationError(f"Zendesk URL {self.base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ConfigurationError(
                f"Zendesk URL {self.base_url!r}: plain http only for a loopback emulator"
            )
        if self.timeout_s <= 0:
            raise ConfigurationError(f"Zendesk timeout must be positive, not {self.timeout_s}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ZendeskSettings | None:
        """The settings from ``ACTIONFLOWS_ZENDESK_*``; None when no URL or subdomain is set."""
        env = os.environ if environ is None else environ
        url = env.get(f"{PREFIX}URL") or None
        if url is None and (subdomain := env.get(f"{PREFIX}SUBDOMAIN")):
            url = f"https://{subdomain}.zendesk.com"
        if url is None:
            return None
        api_token = _secret(env, "API_TOKEN")
        oauth_token = _secret(env, "OAUTH_TOKEN")
        auth: ApiToken | OAuthToken
        if api_token is not None and oauth_token is not None:
            raise ConfigurationError(f"set {PREFIX}API_TOKEN or {PREFIX}OAUTH_TOKEN, not both")
        if oauth_token is not None:
            auth = OAuthToken(oauth_token)
        elif api_token is not None:
            email = env.get(f"{PREFIX}EMAIL")
            if not email:
                raise ConfigurationError(f"{PREFIX}API_TOKEN needs {PREFIX}EMAIL (the agent)")
            auth = ApiToken(email, api_token)
        else:
            raise ConfigurationError(
                f"{PREFIX}URL is set but neither {PREFIX}API_TOKEN nor {PREFIX}OAUTH_TOKEN is"
            )
        try:
            timeout_s = float(env.get(f"{PREFIX}TIMEOUT_S") or 5.0)
        except ValueError:
            raise ConfigurationError(f"{PREFIX}TIMEOUT_S must be a number of seconds") from None
        return cls(base_url=url.rstrip("/"), auth=auth, timeout_s=timeout_s)


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    """``PREFIX+name`` itself, or the stripped content of the file ``PREFIX+name+_FILE`` names."""
    if value := env.get(f"{PREFIX}{name}"):
        return SecretStr(value)
    if path := env.get(f"{PREFIX}{name}_FILE"):
        try:
            return SecretStr(Path(path).expanduser().read_text().strip())
        except OSError as error:
            raise ConfigurationError(
                f"{PREFIX}{name}_FILE: cannot read {path}: {error.strerror}"
            ) from None
    return None
