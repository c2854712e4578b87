"""The engine's failure paths and ordering on the real broker, with faults from the emulator.

Each test runs the worker in process (``Service``) against the session broker and an emulator
whose fault rules decide how Salesforce misbehaves; the Salesforce client's own retries are
turned off so that each fault is one attempt of the step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from sfemulator import Emulator, EmulatorConfig, FaultRule, emulator_connection
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import produce, read
from topics import headers as h
from topics.catalogue import CatalogueSettings

UPSERT = {"method": "PATCH", "path_regex": "Lead/Actionflows_Key__c"}  # single or Collections


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=5)) as emu:
        yield emu


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    return tmp_path


def config(
    kafka: str, unique: str, flows: Path, emu: Emulator, partitions: int = 1
) -> ServiceConfig:
    connection = emulator_connection(emu.url, emu.credentials, emu.api_version).model_copy(
        update={"max_attempts": 1}
    )
    return ServiceConfig(
        worker=WorkerSettings(
            bootstrap_servers=kafka,
            app_id=f"paths-{unique}",
            flows_dir=flows,
            topic_partitions=partitions,
        ),
        connection=connection,
        topics=CatalogueSettings(
            prefix=f"p-{unique}", partitions=partitions, retry_delays_ms=(300, 600)
        ),
    )


async def run_one(kafka: str, cfg: ServiceConfig, results: int = 1) -> list[dict[str, object]]:
    """Feed one ticket.created event; return the run results once ``results`` arrived."""
    prefix = cfg.topics.prefix
    async with Service(cfg):
        await produce(kafka, f"{prefix}.tickets", [(b"T1", ticket_created("e1", "T1", "a@x.io"))])
        records = await read(kafka, f"{prefix}.run-results", results)
    return [orjson.loads(r.value) for r in records]


async def test_a_transient_error_is_retried_in_process(
    kafka: str, unique: str, flows: Path, emulator: Emulator
) -> None:
    """One 503 on the create: the step's second in-process attempt succeeds, no retry topic."""
    emulator.set_faults([FaultRule.server_unavailable(times=1, **UPSERT)])
    cfg = config(kafka, unique, flows, emulator)
    (result,) = await run_one(kafka, cfg)
    assert result["status"] == "succeeded"
    assert result["attempts"] == 2
    assert len(emulator.records("Lead")) == 1


async def test_a_longer_outage_goes_through_a_retry_topic_and_then_succeeds(
    kafka: str, unique: str, flows: Path, emulator: Emulator
) -> None:
    """Four 503s: three attempts in process, then the retry tier, where the fourth attempt
    fails and the fifth succeeds; the lead exists once and the retry topic carried the record."""
    emulator.set_faults([FaultRule.server_unavailable(times=4, **UPSERT)])
    cfg = config(kafka, unique, flows, emulator)
    first, second = await run_one(kafka, cfg, results=2)
    assert (first["status"], second["status"]) == ("retry_later", "succeeded")
    assert second["attempts"] == 5
    (parked,) = await read(kafka, f"{cfg.topics.prefix}.retry.300ms", 1)
    context = h.parse_retry_headers(parked.headers)
    assert context is not None
    assert (context.flow, context.resume_step, context.attempt) == ("create-lead", "create_lead", 3)
    assert len(emulator.records("Lead")) == 1


async def test_an_outage_longer_than_the_policy_ends_in_the_dead_letters(
    kafka: str, unique: str, flows: Path, emulator: Emulator
) -> None:
    """Every attempt fails: after max_attempts (5) across deliveries, the record is dead-lettered."""
    emulator.set_faults([FaultRule.server_unavailable(**UPSERT)])
    cfg = config(kafka, unique, flows, emulator)
    results = await run_one(kafka, cfg, results=2)
    assert [r["status"] for r in results] == ["retry_later", "dead_letter"]
    (letter,) = await read(kafka, f"{cfg.topics.prefix}.dead-letters", 1)
    context = h.parse_dead_letter_headers(letter.headers)
    assert (context.step, context.attempts, context.salesforce_error_code) == (
        "create_lead",
        5,
        "SERVER_UNAVAILABLE",
    )
    assert (context.topic, context.offset) == (f"{cfg.topics.prefix}.tickets", 0)
    assert letter.value == ticket_created("e1", "T1", "a@x.io")


async def test_a_permanent_error_is_dead_lettered_at_once(
    kafka: str, unique: str, flows: Path, emulator: Emulator
) -> None:
    """A validation error is not retried: one attempt, then the dead letters, with its code."""
    emulator.set_faults(
        [
            FaultRule(
                "http_error",
                status=400,
                times=1,
                error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                message="Leads need a region",
                **UPSERT,
            )
        ]
    )
    cfg = config(kafka, unique, flows, emulator)
    (result,) = await run_one(kafka, cfg)
    assert result["status"] == "dead_letter"
    assert result["attempts"] == 1
    (letter,) = await read(kafka, f"{cfg.topics.prefix}.dead-letters", 1)
    context = h.parse_dead_letter_headers(letter.headers)
    assert context.salesforce_error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "Leads need a region" in context.exception_message


async def test_each_tickets_events_run_in_the_order_they_arrived(
    kafka: str, unique: str, flows: Path, emulator: Emulator
) -> None:
    """Five tickets x 30 events over 3 partitions, with jittery latency: per ticket, results
    come out in the order the events went in."""
    emulator.set_faults([FaultRule("latency", latency_ms=3.0, probability=0.5)])
    cfg = config(kafka, unique, flows, emulator, partitions=3)
    events = [
        (f"T{i % 5}".encode(), ticket_created(f"e{i}", f"T{i % 5}", f"p{i}@x.io"))
        for i in range(150)
    ]
    async with Service(cfg):
        await produce(kafka, f"{cfg.topics.prefix}.tickets", events)
        records = await read(kafka, f"{cfg.topics.prefix}.run-results", 150, timeout_s=60)
    by_ticket: dict[str, list[int]] = {}
    for record in records:  # one ticket lives on one partition, read in offset order
        result = orjson.loads(record.value)
        by_ticket.setdefault(result["ticket_id"], []).append(int(result["event_id"][1:]))
    assert len(by_ticket) == 5
    for numbers in by_ticket.values():
        assert numbers == sorted(numbers)
