"""Typed, immutable settings of the webhook ingest. The only module of ``agents.ingest`` that
reads the environment or files.

Variables (docs/zendesk.md has the whole setup)::

    ACTIONFLOWS_INGEST_HOST                 bind address; default 127.0.0.1 (put TLS in front)
    ACTIONFLOWS_INGEST_PORT                 default 8088 (0: any free port)
    ACTIONFLOWS_INGEST_MAX_BYTES            largest request body; default 1 MiB, the decoder's limit
    ACTIONFLOWS_INGEST_ZENDESK_SECRETS      webhook signing secrets, comma-separated: two during a
                                            rotation, the old one removed once Zendesk uses the new
    ACTIONFLOWS_INGEST_ZENDESK_SECRETS_FILE the same, one per line (both may be given: all count)
    ACTIONFLOWS_INGEST_TOKENS               bearer tokens accepted on POST /events, comma-separated
    ACTIONFLOWS_INGEST_TOKENS_FILE          the same, one per line
    ACTIONFLOWS_INGEST_ENRICH               on | off; default on when a Zendesk connection is set
    ACTIONFLOWS_INGEST_ENRICH_TIMEOUT_S     how long a webhook may wait for Zendesk; default 2
    ACTIONFLOWS_INGEST_CACHE_TTL_S          how long a looked-up person is reused; default 300

plus ``KAFKA_BOOTSTRAP_SERVERS`` and the TLS and SASL settings of
:class:`agents.settings.KafkaSecurity` (``KAFKA_SECURITY_PROTOCOL`` …), the topic settings of :func:`agents.settings.topics_from_env`
and the Zendesk connection of :class:`zendesk.settings.ZendeskSettings` (``ACTIONFLOWS_ZENDESK_*``).
Secrets are :class:`pydantic.SecretStr` and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from agents.settings import PLAINTEXT, KafkaSecurity, topics_from_env
from topics.catalogue import CatalogueSettings
from topics.codecs import DEFAULT_MAX_BYTES
from zendesk.settings import ZendeskSettings

PREFIX = "ACTIONFLOWS_INGEST_"
DEFAULT_PORT = 8088


class IngestSettingsError(ValueError):
    """A setting of the ingest is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class EnrichmentSettings:
    """Requester lookups in Zendesk for events that carry only ids (docs/zendesk.md)."""

    zendesk: ZendeskSettings
    timeout_s: float = 2.0  # Zendesk gives a webhook 10 s; the produce needs some of them
    ttl_s: float = 300.0
    miss_ttl_s: float = 60.0
    linger_s: float = 0.002  # how long to gather concurrent lookups into one call


@dataclass(frozen=True, slots=True)
class IngestSettings:
    bootstrap_servers: str
    security: KafkaSecurity = PLAINTEXT
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BYTES
    signing_secrets: tuple[SecretStr, ...] = ()
    bearer_tokens: tuple[SecretStr, ...] = ()
    #: Zendesk's signature timestamp may be this far from now, either way (replay protection)
    tolerance_s: float = 300.0
    #: how long a request waits for the broker's acknowledgement before answering 503
    publish_timeout_s: float = 5.0
    #: what a 503 asks the sender to wait; Zendesk retries a 503 only with one under a minute
    retry_after_s: int = 5
    enrichment: EnrichmentSettings | None = None
    topics: CatalogueSettings = field(default_factory=CatalogueSettings)

    def __post_init__(self) -> None:
        if not self.signing_secrets and not self.bearer_tokens:
            raise IngestSettingsError(
                f"the ingest accepts nothing without {PREFIX}ZENDESK_SECRETS (Zendesk webhooks) "
                f"or {PREFIX}TOKENS (POST /events): set one of them, or their _FILE form"
            )
        if self.max_body_bytes <= 0:
            raise IngestSettingsError(f"{PREFIX}MAX_BYTES must be positive")

    @classmethod
    def from_env(
        cls, bootstrap_servers: str, environ: Mapping[str, str] | None = None
    ) -> IngestSettings:
        env = os.environ if environ is None else environ
        zendesk = ZendeskSettings.from_env(env)
        enrich = (env.get(f"{PREFIX}ENRICH") or ("on" if zendesk else "off")).lower()
        if enrich not in {"on", "off"}:
            raise IngestSettingsError(f"{PREFIX}ENRICH is 'on' or 'off', not {enrich!r}")
        enrichment = None
        if enrich == "on":
            if zendesk is None:
                raise IngestSettingsError(
                    f"{PREFIX}ENRICH=on needs a Zendesk connection (ACTIONFLOWS_ZENDESK_URL …)"
                )
            enrichment = EnrichmentSettings(
                zendesk=zendesk,
                timeout_s=_number(env, "ENRICH_TIMEOUT_S", 2.0),
                ttl_s=_number(env, "CACHE_TTL_S", 300.0),
            )
        return cls(
            bootstrap_servers=bootstrap_servers,
            security=KafkaSecurity.from_env(env),
            host=env.get(f"{PREFIX}HOST") or "127.0.0.1",
            port=int(_number(env, "PORT", DEFAULT_PORT)),
            max_body_bytes=int(_number(env, "MAX_BYTES", DEFAULT_MAX_BYTES)),
            signing_secrets=_secrets(env, "ZENDESK_SECRETS"),
            bearer_tokens=_secrets(env, "TOKENS"),
            enrichment=enrichment,
            topics=topics_from_env(env),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(f"{PREFIX}{name}")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise IngestSettingsError(f"{PREFIX}{name} must be a number, not {raw!r}") from None


def _secrets(env: Mapping[str, str], name: str) -> tuple[SecretStr, ...]:
    """The values of ``PREFIX+name`` (comma-separated) and of the file ``PREFIX+name+_FILE``
    (one per line; blank lines and ``#`` comments skipped), in that order, without repeats."""
    values = [part.strip() for part in (env.get(f"{PREFIX}{name}") or "").split(",")]
    if path := env.get(f"{PREFIX}{name}_FILE"):
        try:
            lines = Path(path).expanduser().read_text().splitlines()
        except OSError as error:
            raise IngestSettingsError(
                f"{PREFIX}{name}_FILE: cannot read {path}: {error.strerror}"
            ) from None
        values += [line.strip() for line in lines if not line.lstrip().startswith("#")]
    return tuple(SecretStr(value) for value in dict.fromkeys(values) if value)
