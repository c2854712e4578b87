"""BatchingGateway over real HTTP against the emulator: calls saved, per-record and whole-call
failures fanned out, duplicate keys split, no linger when idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from salesforce.batching import BatchingGateway
from salesforce.client import SalesforceClient
from salesforce.errors import ServerError, ValidationError
from sfemulator import Emulator, EmulatorConfig, FaultRule, emulator_connection

CREATES = "POST /composite/sobjects"
UPSERTS = "PATCH /composite/sobjects/{type}/{field}"
KEY = "Actionflows_Key__c"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=0)) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[SalesforceClient]:
    settings = emulator_connection(emu.url, emu.credentials, emu.api_version)
    async with SalesforceClient(settings) as sf:
        await sf.connect()
        yield sf


def lead(name: str, **extra: str) -> dict[str, str]:
    return {"LastName": name, "Company": "Acme", **extra}


async def test_500_concurrent_creates_take_at_most_3_calls(
    emu: Emulator, client: SalesforceClient
) -> None:
    """500 flow runs creating a lead at once cost ≤3 Collections calls and create 500 leads."""
    async with BatchingGateway(client) as gateway:
        started = time.perf_counter()
        ids = await asyncio.gather(*(gateway.create("Lead", lead(f"L{i}")) for i in range(500)))
        elapsed = time.perf_counter() - started
    counts = emu.call_counts()
    assert counts[CREATES] <= 3
    assert counts["api_calls"] == counts[CREATES]
    stored = {r["Id"]: r["LastName"] for r in emu.records("Lead")}
    assert len(stored) == 500
    assert [stored[i] for i in ids] == [f"L{i}" for i in range(500)]  # each caller its own lead
    assert gateway.stats().records["create"] == 500
    assert elapsed < 10


async def test_only_invalid_records_fail_their_callers(
    emu: Emulator, client: SalesforceClient
) -> None:
    """In one call, leads missing LastName or with a too-long field fail; the others are created."""
    invalid = {3: {"Company": "Acme"}, 7: lead("x" * 81), 8: {"Company": "Acme"}}
    records = [invalid.get(i, lead(f"L{i}")) for i in range(12)]
    async with BatchingGateway(client) as gateway:
        results = await asyncio.gather(
            *(gateway.create("Lead", r) for r in records), return_exceptions=True
        )
    assert emu.call_counts()[CREATES] == 1
    failed = {i for i, r in enumerate(results) if isinstance(r, ValidationError)}
    assert failed == set(invalid)
    missing = results[3]
    assert isinstance(missing, ValidationError)
    assert missing.fields == ("LastName",)
    assert len(emu.records("Lead")) == 9


async def test_duplicate_external_ids_are_split_and_applied_in_order(
    emu: Emulator, client: SalesforceClient
) -> None:
    """Concurrent upserts of one key go in successive calls; the last write made wins."""
    async with BatchingGateway(client) as gateway:
        results = await asyncio.gather(
            *(gateway.upsert("Lead", KEY, "evt-1", lead(f"v{i}")) for i in range(4)),
            *(gateway.upsert("Lead", KEY, f"evt-other-{i}", lead("o")) for i in range(5)),
        )
    assert emu.call_counts()[UPSERTS] == 4  # 1 + 5 records, then 3 more of evt-1, one by one
    assert [r.created for r in results[:4]] == [True, False, False, False]
    assert len({r.id for r in results[:4]}) == 1
    [record] = [r for r in emu.records("Lead") if r[KEY] == "evt-1"]
    assert record["LastName"] == "v3"
    assert len(emu.records("Lead")) == 6


async def test_a_failed_call_raises_in_every_caller(
    emu: Emulator, client: SalesforceClient
) -> None:
    """A 503 on the Collections create raises ServerError, ambiguous, in each of its callers."""
    emu.set_faults([FaultRule.server_unavailable(method="POST", path="*/composite/sobjects")])
    async with BatchingGateway(client) as gateway:
        results = await asyncio.gather(
            *(gateway.create("Lead", lead(f"L{i}")) for i in range(20)), return_exceptions=True
        )
    assert all(isinstance(r, ServerError) and r.ambiguous for r in results), results[:2]
    assert len({id(r) for r in results}) == 20
    assert emu.call_counts()[CREATES] == 1


async def test_an_idle_call_has_no_added_linger(emu: Emulator, client: SalesforceClient) -> None:
    """With nothing in flight a lone create is sent at once, even with a long max linger."""
    async with BatchingGateway(client, max_linger_s=5.0) as gateway:
        started = time.perf_counter()
        await gateway.create("Lead", lead("solo"))
        elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert emu.call_counts()[CREATES] == 1
