"""Typed, immutable settings for the worker. The only module of ``agents`` that reads the environment.

Variables (all optional):

``KAFKA_BOOTSTRAP_SERVERS``   use this cluster instead of starting a local broker
``ACTIONFLOWS_KAFKA_VERSION`` the Kafka version the local broker runs (default: localkafka's)
``ACTIONFLOWS_APP_ID``        the faust app id, which is also the consumer group (default: actionflows)
``ACTIONFLOWS_FLOWS_DIR``     the folder of flow files (default: flows)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from localkafka import DEFAULT_KAFKA_VERSION


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
    extra: Mapping[str, object] = field(default_factory=dict)  # passed to faust.App as-is

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
