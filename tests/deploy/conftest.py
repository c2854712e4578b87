"""A local Kafka with a SASL_SSL listener, for the deployment tests: a certificate this session
makes (a CA and a broker certificate for 127.0.0.1), users for PLAIN and SCRAM-SHA-512."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.settings import KafkaSettings
from localkafka import BrokerOptions, Listener, LocalBroker
from tests.deploy.tls import make_certificates

USERS = {"actionflows": "worker-Passw0rd", "ingest": "ingest-Passw0rd"}


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str  # the SASL_SSL listener of every node
    ca: Path
    users: dict[str, str]
    broker: LocalBroker


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    folder = Path(tempfile.mkdtemp(prefix="actionflows-tls-"))
    certificates = make_certificates(folder)
    secure = Listener("SECURE", "SASL_SSL", certificates.keystore, tuple(USERS.items()))
    options = BrokerOptions(
        kafka_version=KafkaSettings.from_env().local_version, listeners=(Listener(), secure)
    )
    with LocalBroker(options) as broker:
        yield SecureKafka(broker.bootstrap("SECURE"), certificates.ca, USERS, broker)
