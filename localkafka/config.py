"""What a local Kafka node is configured with: listeners, the cluster's layout, and the files.

Pure: no processes here. :mod:`localkafka.broker` writes these files and runs the JVMs.

The layout of a data directory (kept across restarts when the caller owns the directory)::

    <dir>/cluster.json                 cluster id, Kafka version, every node's ports
    <dir>/node-<id>/server.properties  rewritten at every start from cluster.json
    <dir>/node-<id>/data/              the KRaft log dirs (formatted once: meta.properties)
    <dir>/node-<id>/logs/              server.log and console.log
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The listener kinds this module can configure. PLAINTEXT carries the traffic between brokers;
# SASL_SSL is for testing clients as real clusters want them: TLS, and a SASL login with PLAIN
# or SCRAM-SHA-512.
SecurityProtocol = Literal["PLAINTEXT", "SASL_SSL"]
CONTROLLER = "CONTROLLER"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-512")
# What the storage tool's --add-scram and a JAAS line can carry without quoting.
_PLAIN_TEXT = re.compile(r"^[A-Za-z0-9._@+-]+$")


@dataclass(frozen=True, slots=True)
class Listener:
    """A client listener: a name (as in ``listeners=NAME://host:port``) and its security.

    Every node gets one loopback port per listener; the first listener also carries the
    traffic between brokers (and the readiness probe), so it is PLAINTEXT.

    A ``SASL_SSL`` listener serves TLS with ``keystore`` (one PEM file: the private key, PKCS#8
    and unencrypted, then the certificate chain) and accepts the ``users`` (name, password)
    with PLAIN and with SCRAM-SHA-512; SCRAM credentials are written into the cluster's
    metadata when the storage is formatted, so a kept data directory keeps its first users.
    """

    name: str = "PLAINTEXT"
    protocol: SecurityProtocol = "PLAINTEXT"
    keystore: Path | None = None
    users: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.upper() != self.name:
            raise ValueError(f"listener names are upper-case identifiers, not {self.name!r}")
        if self.name == CONTROLLER:
            raise ValueError("CONTROLLER is the controllers' own listener")
        if self.protocol == "SASL_SSL":
            if self.keystore is None or not self.users:
                raise ValueError(f"the SASL_SSL listener {self.name} needs a keystore and users")
            for user, password in self.users:
                if not (_PLAIN_TEXT.match(user) and _PLAIN_TEXT.match(password)):
                    raise ValueError(
                        f"SASL user names and passwords are letters, digits and ._@+- only "
                        f"(user {user!r})"
                    )
        elif self.keystore is not None or self.users:
            raise ValueError(
                f"a keystore and users are for SASL_SSL listeners, not {self.protocol}"
            )

    def properties(self) -> list[str]:
        """This listener's own broker settings (none for PLAINTEXT)."""
        if self.protocol != "SASL_SSL":
            return []
        prefix = f"listener.name.{self.name.lower()}"
        plain_users = " ".join(f'user_{user}="{password}"' for user, password in self.users)
        return [
            f"{prefix}.ssl.keystore.type=PEM",
            f"{prefix}.ssl.keystore.location={self.keystore}",
            f"{prefix}.sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
            f"{prefix}.plain.sasl.jaas.config="
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            f"{prefix}.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]

    def scram_arguments(self) -> list[str]:
        """The storage tool's ``--add-scram`` arguments for this listener's users."""
        return [
            f"--add-scram=SCRAM-SHA-512=[name={user},password={password}]"
            for user, password in self.users
        ]


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """One node's id and loopback ports: a port per client listener, and the controller's."""

    node_id: int
    ports: dict[str, int]
    controller_port: int


@dataclass(frozen=True, slots=True)
class Layout:
    """A cluster as ``cluster.json`` keeps it, so that a restart finds the same ports and id."""

    cluster_id: str
    kafka_version: str
    nodes: tuple[NodeAddress, ...]

    def save(self, directory: Path) -> None:
        body = {
            "cluster_id": self.cluster_id,
            "kafka_version": self.kafka_version,
            "nodes": [
                {"node_id": n.node_id, "ports": n.ports, "controller_port": n.controller_port}
                for n in self.nodes
            ],
        }
        (directory / "cluster.json").write_text(json.dumps(body, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Layout | None:
        path = directory / "cluster.json"
        if not path.exists():
            return None
        body = json.loads(path.read_text())
        return cls(
            body["cluster_id"],
            body["kafka_version"],
            tuple(
                NodeAddress(n["node_id"], dict(n["ports"]), n["controller_port"])
                for n in body["nodes"]
            ),
        )


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def server_properties(
    layout: Layout, node: NodeAddress, listeners: tuple[Listener, ...], data: Path, partitions: int
) -> str:
    """One node's ``server.properties``: combined broker and controller, static voters.

    One config for 3.9 and 4.x: static ``controller.quorum.voters`` plus a plain ``format``
    (reference notes §1.4). Internal topics get the replication a cluster of this size allows.
    """
    size = len(layout.nodes)
    replicas = min(size, 3)
    min_isr = 2 if replicas >= 3 else 1
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in layout.nodes)
    bound = [f"{lis.name}://127.0.0.1:{node.ports[lis.name]}" for lis in listeners]
    protocols = [f"{CONTROLLER}:PLAINTEXT", *(f"{lis.name}:{lis.protocol}" for lis in listeners)]
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners={','.join(bound)},{CONTROLLER}://127.0.0.1:{node.controller_port}",
        f"advertised.listeners={','.join(bound)}",
        f"controller.listener.names={CONTROLLER}",
        f"inter.broker.listener.name={listeners[0].name}",
        f"listener.security.protocol.map={','.join(protocols)}",
        f"log.dirs={data}",
        f"num.partitions={partitions}",
        "num.recovery.threads.per.data.dir=1",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=1",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_isr}",
        "transaction.state.log.num.partitions=1",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        *(line for lis in listeners for line in lis.properties()),
        "",
    ])  # fmt: skip


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

LOG4J1 = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
"""
