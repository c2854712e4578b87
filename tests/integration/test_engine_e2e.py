"""End to end: the worker on the real broker, Salesforce played by the emulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import produce, read
from topics.catalogue import CatalogueSettings


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=1)) as emu:
        yield emu


def service_config(kafka: str, unique: str, flows: Path, emu: Emulator) -> ServiceConfig:
    return ServiceConfig(
        worker=WorkerSettings(bootstrap_servers=kafka, app_id=f"af-{unique}", flows_dir=flows),
        connection=emulator_connection(emu.url, emu.credentials, emu.api_version),
        topics=CatalogueSettings(prefix=f"af-{unique}", partitions=2, retry_delays_ms=(500, 1000)),
    )


async def test_events_on_the_input_topic_create_leads_in_salesforce(
    kafka: str, unique: str, tmp_path: Path, emulator: Emulator
) -> None:
    """Each ticket.created event runs the flow: a lead in the org, outputs on the topics."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    config = service_config(kafka, unique, tmp_path, emulator)
    async with Service(config) as service:
        prefix = config.topics.prefix
        events = [
            (b"T%d" % i, ticket_created(f"e{i}", f"T{i}", f"p{i}@example.com")) for i in range(20)
        ]
        await produce(kafka, f"{prefix}.tickets", [*events, (b"bad", b"{not json")])
        results = await read(kafka, f"{prefix}.run-results", 20)
        letters = await read(kafka, f"{prefix}.dead-letters", 1)
        assert service.engine.stats.events_in >= 21
    assert {orjson.loads(r.value)["status"] for r in results} == {"succeeded"}
    assert letters[0].value == b"{not json"
    emails = sorted(lead["Email"] for lead in emulator.records("Lead"))
    assert emails == sorted(f"p{i}@example.com" for i in range(20))
