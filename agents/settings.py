"""Typed, immutable settings for the worker. The only module of ``agents`` that reads the environment.

Variables (all optional):

``KAFKA_BOOTSTRAP_SERVERS``   use this cluster instead of starting a local broker
``ACTIONFLOWS_KAFKA_VERSION`` the Kafka version the local broker runs (default: localkafka's)
``ACTIONFLOWS_KAFKA_BROKERS`` nodes of the local cluster the tests start (default: 1)
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``, ``KAFKA_SSL_*``  how every Kafka client of the
                              project connects: TLS and SASL (see :class:`KafkaSecurity`)
``ACTIONFLOWS_APP_ID``        the faust app id, which is also the consumer group (default: actionflows)
``ACTIONFLOWS_FLOWS_DIR``     the folder of flow files (default: flows)
``ACTIONFLOWS_COMPRESSION``   ``none`` (default), ``gzip``, ``lz4`` or ``zstd``: how the
                              worker compresses what it publishes (outcomes, ledger entries)
``ACTIONFLOWS_STATE_DIR``     the worker's local state, faust's data folder among it
                              (default: ``$XDG_STATE_HOME/actionflows``, i.e. ``~/.local/state/…``)
``ACTIONFLOWS_TOPIC_PREFIX``  the prefix of every topic name (default: actionflows)
``ACTIONFLOWS_TICKETS_TOPIC``, ``ACTIONFLOWS_INTERACTIONS_TOPIC``  input topic names
``ACTIONFLOWS_PARTITIONS``    partitions of the topics the worker creates (default: 12)
``ACTIONFLOWS_REPLICATION_FACTOR``, ``ACTIONFLOWS_MIN_INSYNC_REPLICAS``  of the topics the
                              worker creates (default: 3 and 2 on three or more brokers, else 1)
``ACTIONFLOWS_RETRY_DELAYS``  the retry tiers, e.g. ``30s,5m,1h`` (the default)
``ACTIONFLOWS_MAX_IN_FLIGHT`` records in flight per worker, W (default 2000): taken and not yet
                              finished, across the input and retry agents; the backpressure bound
``ACTIONFLOWS_SALESFORCE_GATHER``  the least time between two Salesforce calls of one kind
                              (writes of one object, finds of one shape) when none is in flight;
                              what comes meanwhile shares the next call (default ``20ms``; ``0``)
``ACTIONFLOWS_EVENT_LOOP``    ``uvloop`` (default) or ``asyncio``: the worker's and the ingest's
                              event loop (agents/loops.py)
``ACTIONFLOWS_NO_MATCH_RESULTS``  ``false`` publishes no run result for events no flow matches
                              (they are still counted); for high-volume topics (default true)
``ACTIONFLOWS_LEDGER``        ``on`` (default) or ``off``: without the ledger topic, completed
                              steps are remembered in memory only, and a restart forgets them
``ACTIONFLOWS_EXTERNAL_ID_FIELDS``  which objects' creates are upserts, keyed by which field:
                              ``lead=Actionflows_Key__c,case=Actionflows_Key__c``; ``none`` for
                              plain creates everywhere (default: all six objects, that field)
``ACTIONFLOWS_BUDGET_RESERVE``  share of the org's daily API calls kept for others (0.10)
``ACTIONFLOWS_BUDGET_PROBE``  while paused on the budget, one call this often (default: 5m)

Observability and the run-history API (docs/operations.md):

``ACTIONFLOWS_LOG_FORMAT``    ``text`` (default) or ``json`` (one object per line)
``ACTIONFLOWS_LOG_LEVEL``     ``INFO`` (default), ``DEBUG``, ``WARNING`` …
``ACTIONFLOWS_HTTP_HOST``, ``ACTIONFLOWS_HTTP_PORT``  the worker's metrics and health endpoints
                              (default 127.0.0.1:6066; port ``off``: none)
``ACTIONFLOWS_API_HOST``, ``ACTIONFLOWS_API_PORT``    the run-history API (default 127.0.0.1:6067)
``ACTIONFLOWS_API_URL``       where ``actionflows runs`` finds the API (default from the above)
``ACTIONFLOWS_API_TOKEN``     the bearer token for every endpoint but /healthz (or ``_FILE``)
``ACTIONFLOWS_AUDIT_LOG``     a file that gets one JSON line per write request (also logged)
``ACTIONFLOWS_HISTORY_DB``    the history's SQLite file (default ~/.cache/actionflows/…)
``ACTIONFLOWS_CONSOLE_WORKERS``  the workers whose ``/metrics`` the console's live page reads,
                              base URLs separated by commas, ``none`` for none (default: the
                              local worker's endpoint, from ``ACTIONFLOWS_HTTP_HOST``/``_PORT``)
``OTEL_TRACES_EXPORTER``      ``otlp`` exports traces; the exporter reads ``OTEL_EXPORTER_OTLP_*``.
                              Unset or ``none``: no export (spans still feed trace headers)
``OTEL_SDK_DISABLED``         ``true``: no export either
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import SecretStr

from agents.engine import EngineSettings
from agents.loops import EventLoopName
from localkafka import DEFAULT_KAFKA_VERSION
from salesforce.budget import BudgetPolicy
from topics.catalogue import CatalogueSettings, parse_delay

_N = TypeVar("_N", int, float)


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if configured := env.get("ACTIONFLOWS_STATE_DIR"):
        return Path(configured)
    base = env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "actionflows"


# -- Kafka: where the cluster is and how every client connects to it ------------------------

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: How the worker's producers compress record batches (None: not at all). aiokafka's codecs, by
#: cramjam, which aiokafka's lz4 and zstd extras bring.
Codec = Literal["gzip", "lz4", "zstd"]
Compression = Codec | None
SECURITY_PROTOCOLS: tuple[SecurityProtocol, ...] = get_args(SecurityProtocol)
SASL_MECHANISMS: tuple[SaslMechanism, ...] = get_args(SaslMechanism)


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How the project's Kafka clients encrypt and authenticate: one object for all of them.

    :func:`agents.kafka_client.client_options` turns it into the keyword arguments of every
    aiokafka client, and :func:`~agents.kafka_client.faust_options` into faust's. Variables::

        KAFKA_SECURITY_PROTOCOL     PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
        KAFKA_SASL_MECHANISM        PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required with SASL)
        KAFKA_SASL_USERNAME         the SASL user
        KAFKA_SASL_PASSWORD_FILE    a file holding its password (or KAFKA_SASL_PASSWORD)
        KAFKA_SSL_CAFILE            PEM certificates to trust (default: the system's)
        KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE  a client certificate and its unencrypted key,
                                    for brokers that ask for one (mutual TLS)
        KAFKA_SSL_CHECK_HOSTNAME    true (default) or false: the broker's certificate must
                                    name the host dialled

    The password is a :class:`~pydantic.SecretStr`: :meth:`describe` and every message leave
    it out.
    """

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL is one of {', '.join(SECURITY_PROTOCOLS)}, "
                f"not {self.protocol!r}"
            )
        if self.sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                got = f"not {self.sasl_mechanism!r}" if self.sasl_mechanism else "it is not set"
                raise ValueError(
                    f"{self.protocol} needs KAFKA_SASL_MECHANISM: one of "
                    f"{', '.join(SASL_MECHANISMS)}; {got}"
                )
            if not self.username or self.password is None:
                raise ValueError(
                    f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"
                )
        elif self.sasl_mechanism or self.username or self.password is not None:
            raise ValueError(
                f"KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL is {self.protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT) for SASL"
            )
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise ValueError(
                f"KAFKA_SSL_* is set but KAFKA_SECURITY_PROTOCOL is {self.protocol}: "
                "use SSL or SASL_SSL for TLS"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def describe(self) -> str:
        """One line for logs and ``--check-config``: everything but the password."""
        parts: list[str] = [self.protocol]
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username}")
        if self.tls:
            parts.append(f"trusting {self.ca_file or 'the system CAs'}")
            if self.cert_file:
                parts.append(f"client certificate {self.cert_file}")
            if not self.check_hostname:
                parts.append("host names not checked")
        return ", ".join(parts)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Raises ValueError naming the variable when a value is missing or not understood."""
        env = os.environ if environ is None else environ
        protocol = (env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        mechanism = (env.get("KAFKA_SASL_MECHANISM") or "").upper() or None
        check = env.get("KAFKA_SSL_CHECK_HOSTNAME")
        try:
            check_hostname = _switch(check) if check else True
        except ValueError as error:
            raise ValueError(f"KAFKA_SSL_CHECK_HOSTNAME: {error}") from None
        return cls(
            protocol=protocol,  # type: ignore[arg-type]  # checked in __post_init__
            sasl_mechanism=mechanism,  # type: ignore[arg-type]
            username=env.get("KAFKA_SASL_USERNAME") or None,
            password=_secret(env, "KAFKA_SASL_PASSWORD"),
            ca_file=_file(env, "KAFKA_SSL_CAFILE"),
            cert_file=_file(env, "KAFKA_SSL_CERTFILE"),
            key_file=_file(env, "KAFKA_SSL_KEYFILE"),
            check_hostname=check_hostname,
        )


PLAINTEXT = KafkaSecurity()


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str | None = None  # None: start the local broker
    local_version: str = DEFAULT_KAFKA_VERSION
    local_brokers: int = 1
    security: KafkaSecurity = PLAINTEXT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            local_version=env.get("ACTIONFLOWS_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION,
            local_brokers=_number(env, "ACTIONFLOWS_KAFKA_BROKERS", int) or 1,
            security=KafkaSecurity.from_env(env),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap_servers: str
    security: KafkaSecurity = PLAINTEXT
    app_id: str = "actionflows"
    flows_dir: Path = Path("flows")
    # faust's data folder is <state_dir>/<app_id>: outside the working tree, one per app.
    state_dir: Path = field(default_factory=default_state_dir)
    web_enabled: bool = False
    web_port: int = 6066
    topic_partitions: int = 1
    # How long the group waits for a worker that stopped heartbeating (a crash) before its
    # partitions move: faust's default is 60 s. Heartbeats run beside processing, so slow
    # Salesforce calls do not need a long session.
    session_timeout_s: float = 10.0
    # Off by default: at the batch sizes a worker's outcomes leave in (a few records per
    # partition), compressing cost more CPU than the network it saves (docs/benchmarks.md).
    compression: Compression = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # passed to faust.App as-is

    @classmethod
    def from_env(
        cls,
        bootstrap_servers: str,
        environ: Mapping[str, str] | None = None,
        *,
        security: KafkaSecurity = PLAINTEXT,
    ) -> WorkerSettings:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap_servers=bootstrap_servers,
            security=security,
            app_id=env.get("ACTIONFLOWS_APP_ID") or "actionflows",
            flows_dir=Path(env.get("ACTIONFLOWS_FLOWS_DIR") or "flows"),
            state_dir=default_state_dir(env),
            compression=compression_from_env(env),
        )


def compression_from_env(environ: Mapping[str, str]) -> Compression:
    """``ACTIONFLOWS_COMPRESSION``: none (the default), gzip, lz4 or zstd."""
    value = (environ.get("ACTIONFLOWS_COMPRESSION") or "none").lower()
    if value == "none":
        return None
    if value not in get_args(Codec):
        raise ValueError(f"ACTIONFLOWS_COMPRESSION must be none, gzip, lz4 or zstd, got {value!r}")
    return value  # type: ignore[return-value]


def topics_from_env(environ: Mapping[str, str] | None = None) -> CatalogueSettings:
    """The topic catalogue's settings; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    try:
        if prefix := env.get("ACTIONFLOWS_TOPIC_PREFIX"):
            values["prefix"] = prefix
        if tickets := env.get("ACTIONFLOWS_TICKETS_TOPIC"):
            values["tickets_topic"] = tickets
        if interactions := env.get("ACTIONFLOWS_INTERACTIONS_TOPIC"):
            values["interactions_topic"] = interactions
        if partitions := env.get("ACTIONFLOWS_PARTITIONS"):
            values["partitions"] = int(partitions)
        if replicas := env.get("ACTIONFLOWS_REPLICATION_FACTOR"):
            values["replication_factor"] = int(replicas)
        if in_sync := env.get("ACTIONFLOWS_MIN_INSYNC_REPLICAS"):
            values["min_insync_replicas"] = int(in_sync)
        if ledger := env.get("ACTIONFLOWS_LEDGER"):
            values["ledger"] = _switch(ledger)
        if delays := env.get("ACTIONFLOWS_RETRY_DELAYS"):
            values["retry_delays_ms"] = tuple(parse_delay(d) for d in delays.split(","))
        return CatalogueSettings(**values)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValueError(
            "topic settings (ACTIONFLOWS_TOPIC_*, _PARTITIONS, _REPLICATION_FACTOR, "
            f"_MIN_INSYNC_REPLICAS, _RETRY_DELAYS, _LEDGER): {error}"
        ) from None


def engine_from_env(environ: Mapping[str, str] | None = None) -> EngineSettings:
    """The engine's settings; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    if window := env.get("ACTIONFLOWS_MAX_IN_FLIGHT"):
        if not window.isdigit() or int(window) < 1:
            raise ValueError(
                f"ACTIONFLOWS_MAX_IN_FLIGHT must be a whole number >= 1, got {window!r}"
            )
        values["max_in_flight"] = int(window)
    if gather := env.get("ACTIONFLOWS_SALESFORCE_GATHER"):
        try:
            values["salesforce_gather_s"] = (
                0.0 if gather.strip() == "0" else parse_delay(gather) / 1000
            )
        except ValueError:
            raise ValueError(
                f"ACTIONFLOWS_SALESFORCE_GATHER must be a delay such as 20ms, or 0, got {gather!r}"
            ) from None
    if no_match := env.get("ACTIONFLOWS_NO_MATCH_RESULTS"):
        if no_match.lower() not in {"true", "false"}:
            raise ValueError(
                f"ACTIONFLOWS_NO_MATCH_RESULTS must be true or false, got {no_match!r}"
            )
        values["no_match_results"] = no_match.lower() == "true"
    return EngineSettings(**values)  # type: ignore[arg-type]


def event_loop_from_env(environ: Mapping[str, str] | None = None) -> EventLoopName:
    """The event loop to run on; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    loop = (env.get("ACTIONFLOWS_EVENT_LOOP") or "uvloop").lower()
    if loop not in get_args(EventLoopName):
        raise ValueError(f"ACTIONFLOWS_EVENT_LOOP must be uvloop or asyncio, got {loop!r}")
    return loop  # type: ignore[return-value]


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where an HTTP server of the service listens, and the token that guards it."""

    host: str = "127.0.0.1"  # loopback unless an operator opens it up
    port: int = 6066
    token: SecretStr | None = None  # None: every endpoint but /healthz answers 401
    audit_log: Path | None = None


@dataclass(frozen=True, slots=True)
class ObserveSettings:
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    http: HttpSettings | None = None  # None: no endpoints (the demo, tests that need none)
    otlp: bool = False  # export traces with OTLP/HTTP, configured by OTEL_EXPORTER_OTLP_*

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ObserveSettings:
        """Raises ValueError naming the variable when a value is not understood."""
        env = os.environ if environ is None else environ
        log_format = (env.get("ACTIONFLOWS_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise ValueError(f"ACTIONFLOWS_LOG_FORMAT must be text or json, not {log_format!r}")
        port = env.get("ACTIONFLOWS_HTTP_PORT") or "6066"
        http = None
        if port.lower() != "off":
            http = _http(env, "ACTIONFLOWS_HTTP", port)
        exporter = (env.get("OTEL_TRACES_EXPORTER") or "none").lower()
        disabled = (env.get("OTEL_SDK_DISABLED") or "").lower() == "true"
        if exporter not in ("otlp", "none"):
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: only otlp and none are built in, not {exporter!r}"
            )
        return cls(
            log_format="json" if log_format == "json" else "text",
            log_level=(env.get("ACTIONFLOWS_LOG_LEVEL") or "INFO").upper(),
            http=http,
            otlp=exporter == "otlp" and not disabled,
        )


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """The run-history indexer and API (``actionflows api``) and its client (``actionflows runs``)."""

    database: Path
    http: HttpSettings
    api_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HistorySettings:
        env = os.environ if environ is None else environ
        http = _http(env, "ACTIONFLOWS_API", env.get("ACTIONFLOWS_API_PORT") or "6067")
        prefix = env.get("ACTIONFLOWS_TOPIC_PREFIX") or "actionflows"
        default_db = Path.home() / ".cache" / "actionflows" / f"history-{prefix}.sqlite3"
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host  # noqa: S104 - a client can't dial 0.0.0.0
        return cls(
            database=Path(env.get("ACTIONFLOWS_HISTORY_DB") or default_db),
            http=http,
            api_url=(env.get("ACTIONFLOWS_API_URL") or f"http://{host}:{http.port}").rstrip("/"),
        )


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The web console (``actionflows console``), served beside the run-history API."""

    flows_dir: Path = Path("flows")
    worker_urls: tuple[str, ...] = ()  # workers whose /metrics the live page reads
    scrape_every_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        """Raises ValueError naming the variable when a value is not understood."""
        env = os.environ if environ is None else environ
        listed = env.get("ACTIONFLOWS_CONSOLE_WORKERS")
        urls: tuple[str, ...]
        if listed is None:
            port = env.get("ACTIONFLOWS_HTTP_PORT") or "6066"
            host = env.get("ACTIONFLOWS_HTTP_HOST") or "127.0.0.1"
            if host in ("0.0.0.0", "::"):  # noqa: S104 - a client can't dial 0.0.0.0
                host = "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            urls = () if port.lower() == "off" else (f"http://{host}:{port}",)
        elif listed.strip().lower() in ("", "none"):
            urls = ()
        else:
            urls = tuple(url.strip().rstrip("/") for url in listed.split(",") if url.strip())
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise ValueError(
                        f"ACTIONFLOWS_CONSOLE_WORKERS: {url!r} is not an http:// or https:// URL"
                    )
        return cls(flows_dir=Path(env.get("ACTIONFLOWS_FLOWS_DIR") or "flows"), worker_urls=urls)


def _http(env: Mapping[str, str], prefix: str, port: str) -> HttpSettings:
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{prefix}_PORT must be a port number, not {port!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{prefix}_PORT must be between 0 and 65535, not {number}")
    return HttpSettings(
        host=env.get(f"{prefix}_HOST") or "127.0.0.1",
        port=number,
        token=_token(env),
        audit_log=Path(audit) if (audit := env.get("ACTIONFLOWS_AUDIT_LOG")) else None,
    )


def _token(env: Mapping[str, str]) -> SecretStr | None:
    return _secret(env, "ACTIONFLOWS_API_TOKEN")


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    """``name`` or the contents of the file ``name_FILE`` (surrounding whitespace dropped, as
    secret files usually end in a newline); None when neither is set."""
    value, path = env.get(name), env.get(f"{name}_FILE")
    if value and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if value:
        return SecretStr(value)
    if path:
        try:
            return SecretStr(Path(path).read_text().strip())
        except OSError as error:
            raise ValueError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
    return None


def _file(env: Mapping[str, str], name: str) -> Path | None:
    """A path the variable names, which must be a readable file (checked now, not at connect)."""
    if not (text := env.get(name)):
        return None
    path = Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise ValueError(f"{name}: cannot read {text}: {error.strerror}") from None
    return path


def external_id_fields_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """``ACTIONFLOWS_EXTERNAL_ID_FIELDS`` as {object: field}; None when unset (the default)."""
    env = os.environ if environ is None else environ
    text = (env.get("ACTIONFLOWS_EXTERNAL_ID_FIELDS") or "").strip()
    if not text:
        return None
    if text.lower() == "none":
        return {}
    fields: dict[str, str] = {}
    for item in text.split(","):
        name, sep, field_name = item.partition("=")
        if not sep or not name.strip() or not field_name.strip():
            raise ValueError(
                f"ACTIONFLOWS_EXTERNAL_ID_FIELDS: {item.strip()!r} is not object=Field "
                "(e.g. lead=Actionflows_Key__c), and the whole value is not 'none'"
            )
        fields[name.strip().lower()] = field_name.strip()
    return fields


def budget_from_env(environ: Mapping[str, str] | None = None) -> BudgetPolicy:
    """The API budget policy; a bad value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    default = BudgetPolicy()
    reserve = _number(env, "ACTIONFLOWS_BUDGET_RESERVE", float)
    probe = env.get("ACTIONFLOWS_BUDGET_PROBE")
    try:
        probe_s = parse_delay(probe) / 1000 if probe else default.probe_interval_s
    except ValueError as error:
        raise ValueError(f"ACTIONFLOWS_BUDGET_PROBE: {error}") from None
    if reserve is not None and not 0 <= reserve < 1:
        raise ValueError(f"ACTIONFLOWS_BUDGET_RESERVE must be within [0, 1), not {reserve}")
    return BudgetPolicy(
        reserve_fraction=default.reserve_fraction if reserve is None else reserve,
        probe_interval_s=probe_s,
    )


def _number(env: Mapping[str, str], name: str, kind: type[_N]) -> _N | None:
    text = env.get(name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in {"on", "true", "1", "yes"}:
        return True
    if value in {"off", "false", "0", "no"}:
        return False
    raise ValueError(f"expected on or off, not {text!r}")


class EnvironmentReads(Mapping[str, str]):
    """The environment, noting which variables are looked up.

    A command reads its settings through one of these; ``--check-config`` then names the
    ``ACTIONFLOWS_*`` and ``KAFKA_*`` variables it was given but never read: a misspelling, or
    one meant for another command, which would otherwise be ignored without a word.
    """

    PREFIXES = ("ACTIONFLOWS_", "KAFKA_")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)
        self._read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self._read.add(name)  # get() and `in` come here too (Mapping's own methods)
        return self._env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def unread(self) -> list[str]:
        return sorted(n for n in self._env if n.startswith(self.PREFIXES) and n not in self._read)
