"""A refused login at start-up pauses and retries, like at run time, with one clear log line,
until Salesforce accepts it or the worker stops. No traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson

from agents.cli import _unless_stopped
from agents.engine import EngineSettings
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import Emulator, EmulatorConfig, FaultRule, emulator_connection
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import produce, read
from topics.catalogue import CatalogueSettings

TOKEN = "/services/oauth2/token"


def refused(times: int | None) -> FaultRule:
    return FaultRule(
        "http_error",
        path=TOKEN,
        status=400,
        error_code="invalid_grant",
        message="expired access/refresh token",
        times=times,
    )


class Seen(logging.Handler):
    """Collects the service's log lines and signals the first warning."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[logging.LogRecord] = []
        self.warned = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record)
        if record.levelno >= logging.WARNING:
            self.warned.set()


def watch_service_log() -> Seen:
    seen = Seen()
    logger = logging.getLogger("agents.service")
    logger.addHandler(seen)
    logger.setLevel(logging.INFO)
    return seen


def config(bootstrap: str, unique: str, flows: Path, emu: Emulator) -> ServiceConfig:
    return ServiceConfig(
        worker=WorkerSettings(
            bootstrap_servers=bootstrap, app_id=f"login-{unique}", flows_dir=flows
        ),
        connection=emulator_connection(emu.url, emu.credentials, emu.api_version),
        topics=CatalogueSettings(prefix=f"login-{unique}", partitions=1),
        engine=EngineSettings(min_pause_s=0.05),
    )


async def test_a_refused_login_at_start_up_pauses_then_the_worker_starts(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """The token endpoint refuses once: one warning naming the cause, then the worker starts
    and processes events."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    seen = watch_service_log()
    try:
        async with Emulator(EmulatorConfig(seed=5, faults=(refused(times=1),))) as emu:
            cfg = config(kafka, unique, tmp_path, emu)
            async with Service(cfg):
                assert emu.call_counts()["fault http_error"] == 1, "the refusal was not injected"
                prefix = cfg.topics.prefix
                await produce(
                    kafka, f"{prefix}.tickets", [(b"T1", ticket_created("e1", "T1", "a@x.io"))]
                )
                [result] = await read(kafka, f"{prefix}.run-results", 1, timeout_s=60)
                assert orjson.loads(result.value)["status"] == "succeeded"
    finally:
        logging.getLogger("agents.service").removeHandler(seen)
    warnings = [r.getMessage() for r in seen.lines if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("cannot start yet: Salesforce refused the login (")
    assert "invalid_grant" in warnings[0]
    assert "budget" not in warnings[0]
    assert any("accepted the login" in r.getMessage() for r in seen.lines)


async def test_stopping_while_the_login_is_refused_ends_cleanly(
    unique: str, tmp_path: Path
) -> None:
    """The worker stops while Salesforce keeps refusing: the wait is cancelled, the client
    closed, nothing raised. No broker is touched before the login."""
    seen = watch_service_log()
    stop = asyncio.Event()
    try:
        async with Emulator(EmulatorConfig(seed=6, faults=(refused(times=None),))) as emu:
            service = Service(config("127.0.0.1:9", unique, tmp_path, emu))
            waiting = asyncio.ensure_future(_unless_stopped(service.login(), stop))
            await asyncio.wait_for(seen.warned.wait(), timeout=30)
            stop.set()
            assert await asyncio.wait_for(waiting, timeout=30) is False
    finally:
        logging.getLogger("agents.service").removeHandler(seen)
    assert service.client.token is None
