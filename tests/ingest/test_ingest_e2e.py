"""From a Zendesk webhook to a Salesforce lead: the ingest, the worker, both emulators, the broker.

The headline flow (find the requester's contact, else lead, else create one) needs the
requester's email, which a Zendesk event webhook does not carry; the ingest's enrichment
supplies it, and a delivery Zendesk retries still makes one lead."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from agents.ingest.settings import EnrichmentSettings
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.ingest.conftest import Start, settings_for
from tests.ingest.test_ingest_enrichment import deliver, ids_only
from tests.kafkatools import read, wait_for
from zdemulator import ZendeskEmulator

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
async def test_a_retried_ids_only_webhook_makes_one_lead(
    kafka: str, unique: str, tmp_path: Path, start_ingest: Start
) -> None:
    shutil.copy(ROOT / "flows" / "10-create-lead-for-unknown-requester.yaml", tmp_path)
    topics = settings_for(kafka, unique).topics
    person = {
        "id": 91234,
        "name": "Grace Hopper",
        "email": "grace@navy.example",
        "phone": "+1 202 555 0142",
    }
    async with (
        Emulator(EmulatorConfig(seed=3)) as salesforce,
        ZendeskEmulator(users=[person], organizations=[{"id": 70001, "name": "US Navy"}]) as zd,
    ):
        config = ServiceConfig(
            worker=WorkerSettings(
                bootstrap_servers=kafka, app_id=f"e2e-{unique}", flows_dir=tmp_path
            ),
            connection=emulator_connection(
                salesforce.url, salesforce.credentials, salesforce.api_version
            ),
            topics=topics,
        )
        enriching = await start_ingest(enrichment=EnrichmentSettings(zendesk=zd.settings()))
        plain = await start_ingest()  # negative control: no enrichment
        async with Service(config) as service:
            webhook = ids_only(88001, 91234)
            assert await deliver(enriching, webhook) == 200
            assert await deliver(enriching, webhook) == 200  # Zendesk retried it
            assert await deliver(plain, ids_only(88002, 91234)) == 200
            # Two runs of the enriched event (the retried delivery reuses the first's steps) and
            # the unenriched one, which no flow matches without a requester email: no_match.
            results = await read(kafka, f"{topics.prefix}.run-results", 3, timeout_s=120)

            async def all_in() -> bool:
                return service.engine.stats.events_in >= 3

            await wait_for(all_in, timeout_s=60, what="the worker to take all three events")
    runs = [orjson.loads(r.value) for r in results]
    assert sorted((r["event_id"], r["status"]) for r in runs) == [
        ("evt-88001", "succeeded"),
        ("evt-88001", "succeeded"),
        ("evt-88002", "no_match"),
    ]
    leads = salesforce.records("Lead")
    assert len(leads) == 1, leads
    assert (leads[0]["Email"], leads[0]["LastName"], leads[0]["Company"]) == (
        "grace@navy.example",
        "Hopper",
        "US Navy",
    )
