"""Typed, immutable settings for the worker. The only module of ``agents`` that reads the environment.

Variables (all optional):

``KAFKA_BOOTSTRAP_SERVERS``   use this cluster instead of starting a local broker
``ACTIONFLOWS_KAFKA_VERSION`` the Kafka version the local broker runs (default: localkafka's)
``ACTIONFLOWS_APP_ID``        the faust app id, which is also the consumer group (default: actionflows)
``ACTIONFLOWS_FLOWS_DIR``     the folder of flow files (default: flows)
``ACTIONFLOWS_TOPIC_PREFIX``  the prefix of every topic name (default: actionflows)
``ACTIONFLOWS_TICKETS_TOPIC``, ``ACTIONFLOWS_INTERACTIONS_TOPIC``  input topic names
``ACTIONFLOWS_PARTITIONS``    partitions of the topics the worker creates (default: 12)
``ACTIONFLOWS_RETRY_DELAYS``  the retry tiers, e.g. ``30s,5m,1h`` (the default)
``ACTIONFLOWS_MAX_IN_FLIGHT`` records in flight per worker, W (default 2000): taken and not yet
                              finished, across the input and retry agents; the backpressure bound
``ACTIONFLOWS_NO_MATCH_RESULTS``  ``false`` publishes no run result for events no flow matches
                              (they are still counted); for high-volume topics (default true)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.engine import EngineSettings
from localkafka import DEFAULT_KAFKA_VERSION
from topics.catalogue import CatalogueSettings, parse_delay


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str | None = None  # None: start the local broker
    local_version: str = DEFAULT_KAFKA_VERSION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            local_version=env.get("ACTIONFLOWS_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION,
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap_servers: str
    app_id: str = "actionflows"
    flows_dir: Path = Path("flows")
    web_enabled: bool = False
    web_port: int = 6066
    topic_partitions: int = 1
    # How long the group waits for a worker that stopped heartbeating (a crash) before its
    # partitions move: faust's default is 60 s. Heartbeats run beside processing, so slow
    # Salesforce calls do not need a long session.
    session_timeout_s: float = 10.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # passed to faust.App as-is

    @classmethod
    def from_env(
        cls, bootstrap_servers: str, environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap_servers=bootstrap_servers,
            app_id=env.get("ACTIONFLOWS_APP_ID") or "actionflows",
            flows_dir=Path(env.get("ACTIONFLOWS_FLOWS_DIR") or "flows"),
        )


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
        if delays := env.get("ACTIONFLOWS_RETRY_DELAYS"):
            values["retry_delays_ms"] = tuple(parse_delay(d) for d in delays.split(","))
        return CatalogueSettings(**values)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValueError(
            f"topic settings (ACTIONFLOWS_TOPIC_*, _PARTITIONS, _RETRY_DELAYS): {error}"
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
    if no_match := env.get("ACTIONFLOWS_NO_MATCH_RESULTS"):
        if no_match.lower() not in {"true", "false"}:
            raise ValueError(
                f"ACTIONFLOWS_NO_MATCH_RESULTS must be true or false, got {no_match!r}"
            )
        values["no_match_results"] = no_match.lower() == "true"
    return EngineSettings(**values)  # type: ignore[arg-type]
