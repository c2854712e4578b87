"""Requester enrichment in the ingest, against the Zendesk API emulator over real HTTP: ids-only
events get their people; when Zendesk cannot answer they go on with ids only, counted and
logged with the reason."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from agents.ingest.server import IngestServer
from agents.ingest.settings import EnrichmentSettings
from pipeline.events import Event
from tests.ingest.conftest import SECRET, Start
from tests.ingest.zendesk_side import signed
from tests.kafkatools import read
from topics.codecs import decode_event
from zdemulator import ZendeskEmulator


def ids_only(ticket: int, requester: int, organization: int | None = 70001) -> bytes:
    """A Zendesk event webhook as Zendesk sends it: people by id only."""
    detail: dict[str, Any] = {"id": str(ticket), "status": "NEW", "requester_id": str(requester)}
    if organization is not None:
        detail["organization_id"] = str(organization)
    return orjson.dumps(
        {
            "type": "zen:event-type:ticket.created",
            "id": f"evt-{ticket}",
            "subject": f"zen:ticket:{ticket}",
            "detail": detail,
        }
    )


@pytest.fixture
async def zd() -> AsyncIterator[ZendeskEmulator]:
    users = [
        {
            "id": 90000 + i,
            "name": f"Person {i}",
            "email": f"p{i}@example.com",
            "phone": f"+1 555 01{i:02}",
        }
        for i in range(50)
    ]
    async with ZendeskEmulator(
        users=users, organizations=[{"id": 70001, "name": "Acme"}]
    ) as emulator:
        yield emulator


async def start(start_ingest: Start, zd: ZendeskEmulator, **options: Any) -> IngestServer:
    return await start_ingest(enrichment=EnrichmentSettings(zendesk=zd.settings(), **options))


async def deliver(ingest: IngestServer, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            ingest.url + "/webhooks/zendesk", data=body, headers=signed(SECRET, body)
        ) as response,
    ):
        return response.status


async def produced(kafka: str, ingest: IngestServer, count: int) -> list[Event]:
    records = await read(kafka, ingest.publisher.topics["tickets"], count)
    return [decode_event(record.value, topic="t") for record in records]


async def test_an_ids_only_event_gets_its_requester_and_organization(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    ingest = await start(start_ingest, zd)
    assert await deliver(ingest, ids_only(1, 90007)) == 200
    [event] = await produced(kafka, ingest, 1)
    assert (
        event.requester.id,
        event.requester.name,
        event.requester.email,
        event.requester.phone,
    ) == (
        "90007",
        "Person 7",
        "p7@example.com",
        "+1 555 0107",
    )
    assert (event.organization.id, event.organization.name) == ("70001", "Acme")
    assert event.attributes["enrichment"] == {"status": "enriched"}
    assert event.ticket["status"] == "new"  # the rest decodes as before


async def test_concurrent_webhooks_share_lookups(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    """40 webhooks at once for 40 people cost a handful of show_many calls, not 40; a second
    round for the same people costs none (cached)."""
    ingest = await start(start_ingest, zd, linger_s=0.01)
    statuses = await asyncio.gather(*(deliver(ingest, ids_only(i, 90000 + i)) for i in range(40)))
    assert statuses == [200] * 40
    user_calls = [ids for kind, ids in zd.calls if kind == "users"]
    assert sum(len(ids) for ids in user_calls) == 40
    assert len(user_calls) <= 5, user_calls
    events = await produced(kafka, ingest, 40)
    assert {e.requester.email for e in events} == {f"p{i}@example.com" for i in range(40)}
    calls_before = len(zd.calls)
    assert (
        await asyncio.gather(*(deliver(ingest, ids_only(100 + i, 90000 + i)) for i in range(10)))
        == [200] * 10
    )
    assert len(zd.calls) == calls_before


async def test_an_event_its_producer_enriched_costs_no_lookup(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    """Negative control: with name and email present (and no organization), nothing is asked."""
    ingest = await start(start_ingest, zd)
    doc = orjson.loads(ids_only(5, 90005, organization=None))
    doc["requester"] = {"id": "90005", "name": "Known", "email": "known@example.com"}
    assert await deliver(ingest, orjson.dumps(doc)) == 200
    [event] = await produced(kafka, ingest, 1)
    assert (event.requester.email, zd.calls) == ("known@example.com", [])
    assert "enrichment" not in event.attributes


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 503}, "unavailable"),
        ({"status": 500}, "unavailable"),
        ({"status": 401}, "unauthorized"),
        ({"status": 403}, "forbidden"),
        ({"status": 429, "retry_after_s": 30}, "rate_limited"),
    ],
)
async def test_when_zendesk_fails_the_event_goes_on_with_ids_only(
    start_ingest: Start,
    zd: ZendeskEmulator,
    kafka: str,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    """The webhook is still accepted; the record says ids_only and why; it is counted and logged."""
    ingest = await start(start_ingest, zd)
    zd.fail_next(times=2, **fault)  # the users and the organizations lookups
    with caplog.at_level(logging.WARNING, logger="agents.ingest.enrich"):
        assert await deliver(ingest, ids_only(2, 90002)) == 200
    [event] = await produced(kafka, ingest, 1)
    assert zd.calls  # the fault was met, not skipped
    assert (event.requester.id, event.requester.email, event.organization.name) == (
        "90002",
        None,
        None,
    )
    assert event.attributes["enrichment"] == {"status": "ids_only", "reason": reason}
    assert ingest.stats.snapshot()[f"enrichment.ids_only.{reason}"] == 1
    assert f"degraded to ids only ({reason})" in caplog.text


async def test_a_rate_limit_pauses_lookups_without_calling_zendesk(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    """After a 429 asking for 30 s, the next webhooks go on with ids only at once, costing
    Zendesk no call."""
    ingest = await start(start_ingest, zd)
    zd.fail_next(429, times=2, retry_after_s=30)
    assert await deliver(ingest, ids_only(3, 90003)) == 200
    calls = len(zd.calls)
    assert await deliver(ingest, ids_only(4, 90004)) == 200
    assert len(zd.calls) == calls
    events = await produced(kafka, ingest, 2)
    assert [e.attributes["enrichment"]["reason"] for e in events] == [
        "rate_limited",
        "rate_limited",
    ]


async def test_a_slow_zendesk_costs_the_webhook_at_most_the_enrichment_timeout(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    """Zendesk answering in 2 s against a 0.2 s budget: ids only, reason timeout."""
    ingest = await start(start_ingest, zd, timeout_s=0.2)
    zd.latency_s = 2.0
    assert await deliver(ingest, ids_only(6, 90006)) == 200
    [event] = await produced(kafka, ingest, 1)
    assert event.attributes["enrichment"] == {"status": "ids_only", "reason": "timeout"}


async def test_an_unknown_person_is_ids_only_not_found(
    start_ingest: Start, zd: ZendeskEmulator, kafka: str
) -> None:
    ingest = await start(start_ingest, zd)
    assert await deliver(ingest, ids_only(7, 12345, organization=None)) == 200
    [event] = await produced(kafka, ingest, 1)
    assert event.attributes["enrichment"] == {"status": "ids_only", "reason": "not_found"}
