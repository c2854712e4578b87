"""Every example flow in flows/, end to end: one event each through the real broker, the worker
and the emulator, and the effect it must have in the org and on the run-result topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from agents.demo import SEED
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.kafkatools import produce, read
from topics.catalogue import CatalogueSettings

FLOWS = Path(__file__).resolve().parents[2] / "flows"
JANE = {"name": "Jane Doe", "email": "jane.doe@acme.example"}


def generic(event_id: str, event_type: str, ticket: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"id": event_id, "type": event_type, "ticket": ticket, **extra})


@pytest.fixture
async def org() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=21)) as emu:
        for sobject, fields in SEED:
            emu.insert(sobject, dict(fields))
        yield emu


async def run_flows(
    kafka: str, unique: str, emu: Emulator, events: list[tuple[str, bytes]], runs: int
) -> dict[tuple[str, str], dict[str, object]]:
    """Feed (topic role, payload) events; return run results by (flow, event id)."""
    config = ServiceConfig(
        worker=WorkerSettings(bootstrap_servers=kafka, app_id=f"ex-{unique}", flows_dir=FLOWS),
        connection=emulator_connection(emu.url, emu.credentials, emu.api_version),
        topics=CatalogueSettings(prefix=f"ex-{unique}", partitions=1),
    )
    prefix = config.topics.prefix
    async with Service(config):
        for role, payload in events:
            await produce(kafka, f"{prefix}.{role}", [(b"k", payload)])
        records = await read(kafka, f"{prefix}.run-results", runs)
    results = [orjson.loads(r.value) for r in records]
    return {(r["flow"], r["event_id"]): r for r in results}


async def test_lead_case_note_lookup_and_conversion_flows(
    kafka: str, unique: str, org: Emulator
) -> None:
    """An unknown requester gets a lead and a case; a known contact gets a note and a lookup;
    a hot lead is converted."""
    org.insert("Lead", {"LastName": "Hot", "Company": "Contoso", "Email": "hot@contoso.example"})
    events = [
        (
            "tickets",
            generic(
                "new-1",
                "ticket.created",
                {"id": "Z1", "subject": "Pricing?"},
                requester={"name": "Nora Quist", "email": "nora@example.com"},
            ),
        ),
        (
            "interactions",
            generic(
                "chat-1",
                "interaction.chat",
                {"id": "Z2"},
                requester=JANE,
                interaction={"channel": "chat", "body": "Invoices found"},
            ),
        ),
        (
            "tickets",
            generic(
                "vip-1",
                "ticket.created",
                {"id": "Z3", "subject": "Outage", "priority": "urgent"},
                requester=JANE,
                organization={"name": "Acme Corporation"},
            ),
        ),
        (
            "interactions",
            generic(
                "hot-1",
                "interaction.email",
                {"id": "Z4"},
                requester={"name": "Hot", "email": "hot@contoso.example"},
                attributes={"ai_lead_score": 91},
            ),
        ),
    ]
    # new-1: create-lead, open-case; chat-1: add-note, create-lead (finds the contact);
    # vip-1: create-lead, open-case, lookup; hot-1: create-lead (finds the lead), convert
    results = await run_flows(kafka, unique, org, events, runs=9)
    assert {r["status"] for r in results.values()} == {"succeeded"}, results

    leads = {lead["Email"]: lead for lead in org.records("Lead")}
    assert set(leads) == {"nora@example.com", "hot@contoso.example"}
    assert leads["nora@example.com"]["LastName"] == "Quist"
    assert leads["hot@contoso.example"]["IsConverted"] is True
    assert len(org.records("Opportunity")) == 1

    cases = {case["Subject"]: case for case in org.records("Case")}
    assert set(cases) == {"Pricing?", "Outage"}
    (jane,) = [c for c in org.records("Contact") if c["Email"] == JANE["email"]]
    assert cases["Outage"]["ContactId"] == jane["Id"]
    assert "Invoices found" in jane["Description"]

    lookup = results[("lookup-contact-for-notification", "vip-1")]["published"]
    # Published values follow the redaction rules: personal data is masked unless the deployment
    # publishes it (EngineSettings.redact_keys=SECRET_KEYS).
    assert lookup["contact"]["email"] == "***"  # type: ignore[index]
    assert JANE["email"] not in str(lookup)
    assert lookup["account"]["name"] == "Acme Corporation"  # type: ignore[index]


async def test_a_status_change_updates_the_linked_case(
    kafka: str, unique: str, org: Emulator
) -> None:
    """A ticket whose external_id names a case: solving it closes the case."""
    case_id = org.insert("Case", {"Subject": "Broken export", "Status": "New", "Origin": "Web"})
    event = generic(
        "solved-1",
        "ticket.status_changed",
        {"id": "Z9", "status": "solved", "external_id": case_id},
    )
    results = await run_flows(kafka, unique, org, [("tickets", event)], runs=1)
    assert results[("update-case-on-status-change", "solved-1")]["status"] == "succeeded"
    (case,) = org.records("Case")
    assert case["Status"] == "Closed"
