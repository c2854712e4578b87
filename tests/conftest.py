"""Test harness: one real Kafka broker per test session, unique names per test.

The broker starts the first time a test asks for ``kafka`` (every integration test does), and runs
until the session ends. With ``KAFKA_BOOTSTRAP_SERVERS`` set, tests use that cluster instead.
When a test that used the broker fails, the tail of the broker's log is attached to its report.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from agents.settings import KafkaSettings
from localkafka import BrokerOptions, LocalBroker

_broker: LocalBroker | None = None


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The bootstrap servers of a real broker."""
    global _broker
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    _broker = LocalBroker(BrokerOptions(kafka_version=settings.local_version)).start()
    print(f"\nlocal Kafka {settings.local_version} ready in {_broker.startup_seconds:.2f}s")
    try:
        yield _broker.bootstrap_servers
    finally:
        _broker.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for this test's topics and consumer groups."""
    return uuid.uuid4().hex[:12]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed and _broker is not None and "kafka" in getattr(item, "fixturenames", ()):
        report.sections.append(("broker log (tail)", _broker.logs(last_chars=4000)))
    return report
