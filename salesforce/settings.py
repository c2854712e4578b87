"""Typed, immutable settings for one or more Salesforce connections (orgs).

This is the only module that reads the environment or files for Salesforce. Secrets are
:class:`pydantic.SecretStr`: they print as ``**********`` in reprs, logs and error messages.

Environment (``NAME`` is the connection name upper-cased, ``-`` as ``_``)::

    ACTIONFLOWS_SF_CONNECTIONS          comma-separated names (optional: names are also found
                                        from any ACTIONFLOWS_SF_<NAME>_CLIENT_ID)
    ACTIONFLOWS_SF_DEFAULT_CONNECTION   the connection used when none is named
    ACTIONFLOWS_SF_CONNECTIONS_FILE     a TOML or YAML file of connections (env vars override it)
    ACTIONFLOWS_SF_<NAME>_LOGIN_URL     https://login.salesforce.com, https://test.salesforce.com,
                                        or the org's My Domain (required for client credentials)
    ACTIONFLOWS_SF_<NAME>_API_VERSION   e.g. 62.0
    ACTIONFLOWS_SF_<NAME>_AUTH          jwt (default), client_credentials, refresh_token, password
    ACTIONFLOWS_SF_<NAME>_CLIENT_ID     the connected app's consumer key
    ACTIONFLOWS_SF_<NAME>_USERNAME      the integration user (JWT ``sub``)
    ACTIONFLOWS_SF_<NAME>_PRIVATE_KEY   PEM text   | or _PRIVATE_KEY_FILE   a path to it
    ACTIONFLOWS_SF_<NAME>_CLIENT_SECRET            | or _CLIENT_SECRET_FILE
    ACTIONFLOWS_SF_<NAME>_REFRESH_TOKEN            | or _REFRESH_TOKEN_FILE
    ACTIONFLOWS_SF_<NAME>_PASSWORD      legacy password flow: password + security token
    ACTIONFLOWS_SF_<NAME>_AUDIENCE      JWT ``aud`` override (default from the login URL)
    ACTIONFLOWS_SF_<NAME>_VERIFY_TLS    true | false       ACTIONFLOWS_SF_<NAME>_CA_FILE  PEM bundle
    ACTIONFLOWS_SF_<NAME>_TIMEOUT_S, _CONNECT_TIMEOUT_S, _MAX_CONCURRENCY, _TOKEN_MAX_AGE_S,
    _JWT_LIFETIME_S

In a connections file the same keys appear in lower case under ``[connections.<name>]``; a
secret may be given as ``<secret>_file`` (a path) or ``<secret>_env`` (a variable name) so the
file itself can live in git.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

PREFIX = "ACTIONFLOWS_SF_"
SECRET_FIELDS = ("private_key", "client_secret", "refresh_token", "password")
_SUFFIXES = (
    "LOGIN_URL",
    "API_VERSION",
    "AUTH",
    "CLIENT_ID",
    "USERNAME",
    "AUDIENCE",
    "VERIFY_TLS",
    "CA_FILE",
    "TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "MAX_CONCURRENCY",
    "TOKEN_MAX_AGE_S",
    "JWT_LIFETIME_S",
    *(f"{secret.upper()}{kind}" for secret in SECRET_FIELDS for kind in ("", "_FILE", "_ENV")),
)


class SettingsError(ValueError):
    """The Salesforce settings are incomplete or contradictory; the message says which."""


class AuthMethod(StrEnum):
    JWT = "jwt"
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a method name, not a secret
    PASSWORD = "password"  # noqa: S105 - legacy method name; Salesforce advises against it


class ConnectionSettings(BaseModel):
    """Everything needed to reach one org as one integration user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    auth: AuthMethod = AuthMethod.JWT
    client_id: str
    username: str | None = None
    private_key: SecretStr | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    password: SecretStr | None = None
    audience: str | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    # Every call gets a deadline well below the 60 s that proxies and Kafka sessions tolerate.
    timeout_s: float = Field(default=30.0, gt=0, le=55)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=55)
    max_concurrency: int = Field(default=25, ge=1, le=1000)
    # Salesforce never says when a token expires; re-mint proactively after this age if set.
    token_max_age_s: float | None = Field(default=None, gt=0)
    jwt_lifetime_s: int = Field(default=180, ge=30, le=300)

    @field_validator("login_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"login_url must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.removeprefix("v")
        if not re.fullmatch(r"\d{2,3}\.0", value):
            raise ValueError(f"api_version must look like 62.0, got {value!r}")
        return value

    @field_validator("private_key")
    @classmethod
    def _pem(cls, value: SecretStr | None) -> SecretStr | None:
        # Env vars and CI secret stores often carry a PEM with literal "\n" for newlines.
        if value is not None and "\n" not in value.get_secret_value():
            return SecretStr(value.get_secret_value().replace("\\n", "\n"))
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"ca_file {value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _secrets_for_method(self) -> ConnectionSettings:
        needed: dict[AuthMethod, tuple[str, ...]] = {
            AuthMethod.JWT: ("username", "private_key"),
            AuthMethod.CLIENT_CREDENTIALS: ("client_secret",),
            AuthMethod.REFRESH_TOKEN: ("refresh_token",),
            AuthMethod.PASSWORD: ("username", "password", "client_secret"),
        }
        missing = [name for name in needed[self.auth] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth={self.auth.value} needs {', '.join(missing)}")
        return self

    @property
    def jwt_audience(self) -> str:
        """``aud`` for the JWT bearer flow: test.salesforce.com for sandboxes, else login."""
        if self.audience:
            return self.audience
        host = urlsplit(self.login_url).hostname or ""
        if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
            return "https://test.salesforce.com"
        return "https://login.salesforce.com"


class SalesforceSettings(BaseModel):
    """All configured connections and which one is the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: Mapping[str, ConnectionSettings]
    default: str | None = None

    def get(self, name: str | None = None) -> ConnectionSettings:
        chosen = (
            name or self.default or (next(iter(self.connections)) if self.connections else None)
        )
        if chosen is None or chosen not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            raise SettingsError(f"no Salesforce connection named {chosen!r} (configured: {known})")
        return self.connections[chosen]


def _env_key(name: str) -> str:
    return name.upper().replace("-", "_")


def _names_from_env(environ: Mapping[str, str]) -> list[str]:
    listed = [n.strip() for n in environ.get(f"{PREFIX}CONNECTIONS", "").split(",") if n.strip()]
    found = [
        key[len(PREFIX) : -len("_CLIENT_ID")].lower()
        for key in environ
        if key.startswith(PREFIX) and key.endswith("_CLIENT_ID")
    ]
    return list(dict.fromkeys([*listed, *found]))


def _raw_from_env(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    base = f"{PREFIX}{_env_key(name)}_"
    return {s.lower(): environ[base + s] for s in _SUFFIXES if base + s in environ}


def _resolve_secrets(name: str, raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    out = dict(raw)
    for secret in SECRET_FIELDS:
        path = out.pop(f"{secret}_file", None)
        var = out.pop(f"{secret}_env", None)
        if out.get(secret) is not None:
            continue
        if path:
            try:
                out[secret] = Path(path).expanduser().read_text()
            except OSError as exc:
                raise SettingsError(
                    f"connection {name!r}: cannot read {secret}_file: {exc}"
                ) from exc
        elif var:
            if var not in environ:
                raise SettingsError(f"connection {name!r}: {secret}_env names unset variable {var}")
            out[secret] = environ[var]
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read Salesforce connections file: {exc}") from exc
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("connections", {}), dict):
        raise SettingsError(f"{path}: expected a table 'connections' of named connections")
    return data


def load_settings(
    environ: Mapping[str, str] | None = None, *, file: Path | None = None
) -> SalesforceSettings:
    """Connections from the connections file (if any) overlaid by ``ACTIONFLOWS_SF_*`` variables."""
    env = os.environ if environ is None else environ
    file = file or (
        Path(env[f"{PREFIX}CONNECTIONS_FILE"]) if f"{PREFIX}CONNECTIONS_FILE" in env else None
    )
    data = _read_file(file) if file else {}
    raw: dict[str, dict[str, Any]] = {
        str(name): dict(values) for name, values in (data.get("connections") or {}).items()
    }
    for name in dict.fromkeys([*raw, *_names_from_env(env)]):
        raw.setdefault(name, {}).update(_raw_from_env(name, env))
    connections: dict[str, ConnectionSettings] = {}
    for name, values in raw.items():
        try:
            connections[name] = ConnectionSettings(name=name, **_resolve_secrets(name, values, env))
        except ValidationError as exc:
            # Rebuilt from the error list without the input, which would show the secrets.
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise SettingsError(f"Salesforce connection {name!r}: {problems}") from None
    default = env.get(f"{PREFIX}DEFAULT_CONNECTION") or data.get("default")
    if default is not None and default not in connections:
        raise SettingsError(f"default Salesforce connection {default!r} is not configured")
    return SalesforceSettings(connections=connections, default=default)
