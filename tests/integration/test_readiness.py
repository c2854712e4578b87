"""/readyz over real HTTP flips, and says why, when the ledger's tail dies, when Salesforce refuses
the login, and when the broker is lost; /healthz stays up through all three."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from agents.ledger import KafkaLedger
from agents.service import Service
from agents.settings import KafkaSettings
from localkafka import BrokerOptions, LocalBroker
from pipeline.ledger import InMemoryLedger
from sfemulator import Emulator, EmulatorConfig, FaultRule
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.integration.test_observe_e2e import get, observed_config, sample
from tests.kafkatools import produce, read, wait_for


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=4)) as emu:
        yield emu


def flows(tmp_path: Path) -> Path:
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    return tmp_path


async def ready_report(url: str) -> tuple[int, dict[str, Any]]:
    status, body = await get(url + "/readyz")
    return status, body


async def until_ready(url: str) -> dict[str, Any]:
    """Readiness after the group assigned the partitions (the negative control of each test)."""

    async def ready() -> dict[str, Any] | None:
        status, body = await ready_report(url)
        return body if status == 200 else None

    report: dict[str, Any] = await wait_for(ready, timeout_s=90, what="/readyz to answer 200")
    return report


async def test_the_ledger_tail_dying_makes_the_worker_unready(
    kafka: str, unique: str, tmp_path: Path, emulator: Emulator
) -> None:
    service = Service(observed_config(kafka, unique, flows(tmp_path), emulator))
    await service.start()
    try:
        assert service.observability.server is not None
        url = service.observability.server.url
        report = await until_ready(url)
        assert report["checks"]["ledger"]["ok"] is True
        assert isinstance(service.ledger, KafkaLedger)

        async def broken(*args: object, **kwargs: object) -> None:
            raise KafkaConnectionError("injected: the tail lost its broker")

        service.ledger._consumer.getmany = broken  # the tail's next read fails

        async def unready() -> dict[str, Any] | None:
            status, report = await ready_report(url)
            return report if status == 503 else None

        report = await wait_for(unready, timeout_s=30, what="/readyz to answer 503")
        ledger = report["checks"]["ledger"]
        assert ledger["ok"] is False
        assert ledger["detail"].startswith("the ledger's tail has stopped")
        assert "injected" in ledger["detail"]  # the fault fired, and is what readiness reports
        assert all(check["ok"] for name, check in report["checks"].items() if name != "ledger")
        assert (await get(url + "/healthz"))[0] == 200
    finally:
        # This branch's KafkaLedger.stop re-raises the error its unsupervised tail died of.
        with contextlib.suppress(KafkaConnectionError):
            await service.stop()


async def test_a_refused_login_makes_the_worker_unready_until_it_is_accepted(
    kafka: str, unique: str, tmp_path: Path, emulator: Emulator
) -> None:
    config = observed_config(kafka, unique, flows(tmp_path), emulator)
    async with Service(config) as service:
        assert service.observability.server is not None
        url = service.observability.server.url
        await until_ready(url)
        emulator.set_faults([
            FaultRule("http_error", path="/services/oauth2/token", status=400,
                      error_code="invalid_grant", message="user hasn't approved this consumer"),
        ])  # fmt: skip
        emulator.expire_tokens()
        prefix = config.topics.prefix
        await produce(kafka, f"{prefix}.tickets", [(b"T1", ticket_created("e1", "T1", "a@x.org"))])

        async def refused() -> dict[str, Any] | None:
            status, report = await ready_report(url)
            return report if status == 503 else None

        report = await wait_for(refused, timeout_s=60, what="/readyz to answer 503")
        salesforce = report["checks"]["salesforce"]
        assert salesforce["ok"] is False
        assert "refused the login (HTTP 400)" in salesforce["detail"]
        _, metrics = await get(url + "/metrics")
        assert sample(metrics, "actionflows_paused", cause="login_refused") == 1
        assert (await get(url + "/healthz"))[0] == 200

        emulator.set_faults([])  # someone approves the connected app again
        (result,) = await read(kafka, f"{prefix}.run-results", 1, timeout_s=60)
        assert b'"succeeded"' in result.value
        report = await until_ready(url)
        assert report["checks"]["salesforce"]["ok"] is True


# faust's consumer thread dies on aiokafka's CancelledError once its broker is gone, and takes
# its shutdown timeout (60 s) to stop: expected here, and not this test's subject.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_losing_the_broker_makes_the_worker_unready(
    unique: str, tmp_path: Path, emulator: Emulator
) -> None:
    """A broker of its own, stopped under the running worker. (The ledger is in memory here:
    KafkaLedger.stop raises CancelledError out of aiokafka's fetcher once its broker is gone,
    which would cut the service's shutdown short; that is the ledger's business, not this
    test's.)"""
    options = BrokerOptions(kafka_version=KafkaSettings.from_env().local_version)
    broker = await asyncio.to_thread(LocalBroker(options).start)
    try:
        config = observed_config(broker.bootstrap_servers, unique, flows(tmp_path), emulator)
        service = Service(config, ledger=InMemoryLedger())
        await service.start()
        try:
            assert service.observability.server is not None
            url = service.observability.server.url
            report = await until_ready(url)
            assert report["checks"]["broker"]["ok"] is True
            await asyncio.to_thread(broker.stop)
            status, report = await ready_report(url)
            assert status == 503
            assert report["checks"]["broker"]["ok"] is False
            assert "broker" in report["checks"]["broker"]["detail"]
            assert (await get(url + "/healthz"))[0] == 200
        finally:
            await asyncio.wait_for(service.stop(grace_s=1.0), timeout=120)
    finally:
        await asyncio.to_thread(broker.stop)
