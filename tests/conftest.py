"""Test harness: one real Kafka per test session, a three-node cluster on demand, unique names.

The broker starts the first time a test asks for ``kafka`` (every integration test does), and runs
until the session ends; ``ACTIONFLOWS_KAFKA_BROKERS=3`` makes it a cluster of three. With
``KAFKA_BOOTSTRAP_SERVERS`` set, tests use that cluster instead.

``kafka_cluster`` is a separate three-node KRaft cluster, started the first time a test asks for
it, for tests that kill brokers; a test that kills a node starts it again before it ends. It is
skipped with ``KAFKA_BOOTSTRAP_SERVERS`` set (nodes of someone else's cluster cannot be killed).

When a test that used a broker fails, the tail of its logs is attached to the report.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from agents.settings import KafkaSettings
from localkafka import BrokerOptions, LocalBroker

_brokers: dict[str, LocalBroker] = {}  # fixture name -> the local Kafka it started


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The bootstrap servers of a real broker (or cluster)."""
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    options = BrokerOptions(kafka_version=settings.local_version, brokers=settings.local_brokers)
    with _started("kafka", options) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[LocalBroker]:
    """A local three-node cluster whose nodes a test may kill (and must restart)."""
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        pytest.skip("kills brokers: needs a local cluster, not KAFKA_BOOTSTRAP_SERVERS")
    with _started("kafka_cluster", BrokerOptions(settings.local_version, brokers=3)) as cluster:
        yield cluster


@contextlib.contextmanager
def _started(fixture: str, options: BrokerOptions) -> Iterator[LocalBroker]:
    """Start a local Kafka for a fixture, remember it for failure reports, stop it after."""
    broker = LocalBroker(options).start()
    nodes = f"{options.brokers} nodes" if options.brokers > 1 else "one node"
    print(f"\nlocal Kafka {options.kafka_version} ({nodes}) ready in {broker.startup_seconds:.2f}s")
    _brokers[fixture] = broker
    try:
        yield broker
    finally:
        del _brokers[fixture]
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for this test's topics and consumer groups."""
    return uuid.uuid4().hex[:12]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for fixture, broker in _brokers.items():
            if fixture in getattr(item, "fixturenames", ()):
                report.sections.append((f"{fixture} log (tail)", broker.logs(last_chars=4000)))
    return report
