"""Near the org's daily API limit the worker pauses, then resumes: nothing fails, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import orjson

from agents.engine import EngineSettings
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from salesforce.budget import BudgetPolicy
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import produce, read, wait_for
from topics.catalogue import CatalogueSettings

EVENTS = 40


async def test_the_worker_pauses_at_the_reserve_and_resumes_when_the_day_rolls_over(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """With a 60-call day and a 25% reserve, 40 events (2 calls each) cannot all run: the worker
    pauses before the limit; once the rolling day moves on it finishes, with no dead letter."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    # Tokens outlive the clock jump below, so the jump only rolls the API usage window.
    emulator_config = EmulatorConfig(seed=9, daily_api_limit=60, token_lifetime_s=10**7)
    async with Emulator(emulator_config) as emu:
        config = ServiceConfig(
            worker=WorkerSettings(
                bootstrap_servers=kafka, app_id=f"budget-{unique}", flows_dir=tmp_path
            ),
            connection=emulator_connection(emu.url, emu.credentials, emu.api_version),
            topics=CatalogueSettings(prefix=f"b-{unique}", partitions=1),
            engine=EngineSettings(min_pause_s=0.2),
            budget=BudgetPolicy(reserve_fraction=0.25, probe_interval_s=0.5),
            batching=False,  # two calls per event, so the budget runs out part way
        )
        prefix = config.topics.prefix
        async with Service(config) as service:
            await produce(
                kafka,
                f"{prefix}.tickets",
                [
                    (f"T{i}".encode(), ticket_created(f"e{i}", f"T{i}", f"p{i}@x.io"))
                    for i in range(EVENTS)
                ],
            )

            async def paused() -> bool:
                return service.engine.stats.pauses > 0

            await wait_for(paused, timeout_s=60, what="the worker to pause on the API budget")
            used, limit = emu.api_usage()
            assert used < limit, "the governor let the org hit its hard limit"
            assert len(emu.records("Lead")) < EVENTS
            emu.advance_clock(24 * 3600 + 60)  # the rolling day (counted per minute) moves on
            results = await read(kafka, f"{prefix}.run-results", EVENTS, timeout_s=60)
        assert {orjson.loads(r.value)["status"] for r in results} == {"succeeded"}
        assert sorted(lead["Email"] for lead in emu.records("Lead")) == sorted(
            f"p{i}@x.io" for i in range(EVENTS)
        )
        assert service.engine.stats.dead_letters == 0
