"""ConsistentGateway: appends that lose no update, one record per key, one write per record at a
time in a worker. Against the emulator over real HTTP, and against small fakes for the rules."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from pipeline.ports import AppendWrite, GatewayError
from salesforce.client import SalesforceClient, VersionedRecord
from salesforce.consistency import ConsistentGateway, KeyedLocks
from salesforce.errors import PreconditionFailedError, WriteConflictError
from sfemulator import Emulator, EmulatorConfig
from tests.salesforce.test_client_emulator import emulator_settings


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=3)) as emulator:
        yield emulator


async def test_the_client_reads_for_update_and_writes_conditionally(emu: Emulator) -> None:
    """read_for_update gives LastModifiedDate and the server's clock; a PATCH with that date
    passes until someone writes in a later second, then it is PreconditionFailedError."""
    contact = emu.insert("Contact", {"LastName": "Lovelace", "Description": "VIP"})
    async with SalesforceClient(emulator_settings(emu)) as client:
        read = await client.read_for_update("Contact", contact, ["Description"])
        assert read.values == {"Description": "VIP"}
        assert read.server_time is not None
        assert read.server_time >= read.last_modified
        await client.update("Contact", contact, {"Title": "A"},
                            if_unmodified_since=read.last_modified)  # fmt: skip
        emu.advance_clock(2)
        await client.update("Contact", contact, {"Title": "B"})
        with pytest.raises(PreconditionFailedError) as refused:
            await client.update("Contact", contact, {"Title": "C"},
                                if_unmodified_since=read.last_modified)  # fmt: skip
    assert (refused.value.status, refused.value.retriable) == (412, False)
    assert emu.records("Contact")[0]["Title"] == "B"


class Barrier:
    """Holds each reader after its read until ``parties`` have read: every writer then writes
    on what it read before anyone wrote, the interleaving that loses updates."""

    def __init__(self, client: SalesforceClient, parties: asyncio.Barrier) -> None:
        self.client = client
        self.parties = parties
        self.first = True

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord:
        read = await self.client.read_for_update(sobject, record_id, fields)
        if self.first:  # only the first read waits; the re-read after a 412 goes straight on
            self.first = False
            await self.parties.wait()
        return read

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: dt.datetime | None = None,
    ) -> None:
        await self.client.update(
            sobject, record_id, fields, if_unmodified_since=if_unmodified_since
        )


class WithoutPrecondition(Barrier):
    """The control: the same client, but the PATCH goes without If-Unmodified-Since."""

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: dt.datetime | None = None,
    ) -> None:
        await self.client.update(sobject, record_id, fields)


async def append_on_two_workers(emu: Emulator, records: type[Barrier]) -> list[str]:
    contact = emu.insert("Contact", {"LastName": "Lovelace", "Description": "VIP"})
    emu.advance_clock(5)  # the contact last changed seconds ago: nobody needs to wait
    parties = asyncio.Barrier(2)
    async with (
        SalesforceClient(emulator_settings(emu)) as one,
        SalesforceClient(emulator_settings(emu)) as two,
    ):
        workers = [
            ConsistentGateway(client, records(client, parties), clock_skew_s=0)
            for client in (one, two)
        ]
        notes = [
            AppendWrite("Contact", contact, {"Description": f"n{i} [m{i}]"}, f"[m{i}]")
            for i in range(2)
        ]
        await asyncio.gather(*(w.append(note) for w, note in zip(workers, notes, strict=True)))
    return str(emu.records("Contact")[0]["Description"]).split("\n")


async def test_two_workers_reading_before_either_writes_both_append(emu: Emulator) -> None:
    """Both workers read the contact, then both write: one write is refused (412), read again
    and added, so both notes are there. Control: without If-Unmodified-Since one is lost."""
    lines = await append_on_two_workers(emu, Barrier)
    assert sorted(lines) == ["VIP", "n0 [m0]", "n1 [m1]"]
    assert emu.call_counts()["PATCH /sobjects/{type}/{id}"] == 3  # one refused, retried
    emu.reset()
    control = await append_on_two_workers(emu, WithoutPrecondition)
    assert len(control) == 2  # VIP and the note written last: the other was overwritten


# --- the rules, against fakes ---------------------------------------------------------------


class Records:
    """A record store speaking the ConditionalRecords protocol, with a scripted clock."""

    def __init__(self, *, server_time: dt.datetime | None, refusals: int = 0) -> None:
        self.changed = dt.datetime(2026, 1, 1, 9, 0, 0, tzinfo=dt.UTC)
        self.value = "VIP"
        self.server_time = server_time
        self.refusals = refusals
        self.reads = 0
        self.writes: list[Mapping[str, Any]] = []

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord:
        self.reads += 1
        return VersionedRecord({"Description": self.value}, self.changed, self.server_time)

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: dt.datetime | None = None,
    ) -> None:
        assert if_unmodified_since == self.changed
        if self.refusals:
            self.refusals -= 1
            raise PreconditionFailedError("changed", status=412)
        self.writes.append(dict(fields))
        self.value = str(fields.get("Description", self.value))


class Inner:
    """The rest of the gateway stack: creates refused once a key exists, queries by key."""

    def __init__(self) -> None:
        self.by_key: dict[str, str] = {}
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next: GatewayError | None = None

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        self.calls.append("create")
        await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        key = str(fields["Key__c"])
        if key in self.by_key:
            raise GatewayError("duplicate value found", error_code="DUPLICATE_VALUE")
        self.by_key[key] = f"00Q{len(self.by_key):015d}"
        return self.by_key[key]

    async def query(self, soql: str) -> list[dict[str, Any]]:
        self.calls.append("query")
        key = soql.split("'")[1]
        return [{"Id": self.by_key[key]}] if key in self.by_key else []


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


NOTE = AppendWrite("Contact", "003000000000001AAA", {"Description": "call [af:1]"}, "[af:1]")


def gateway(records: Records, inner: Inner | None = None, **options: Any) -> ConsistentGateway:
    sleeps = Sleeps()
    made = ConsistentGateway(inner or Inner(), records, sleep=sleeps.sleep,  # type: ignore[arg-type]
                             monotonic=sleeps.monotonic, **options)  # fmt: skip
    made.sleeps = sleeps  # type: ignore[attr-defined]
    return made


async def test_a_412_is_read_again_and_written() -> None:
    """Two refusals, then the write: three reads, one write, the note on its own line."""
    later = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    records = Records(server_time=later, refusals=2)
    await gateway(records).append(NOTE)
    assert (records.reads, records.writes) == (3, [{"Description": "VIP\ncall [af:1]"}])


async def test_a_note_already_there_is_not_added_again() -> None:
    """The marker is in the field: no write (the fields to set still are)."""
    records = Records(server_time=dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC))
    records.value = "VIP\ncall [af:1]"
    await gateway(records).append(NOTE)
    assert records.writes == []


async def test_a_write_waits_until_the_second_of_the_last_change_is_over() -> None:
    """Read in the second the record changed: wait 1 s plus the skew, read again, then write.
    Without a Date header, the same LastModifiedDate read again that much later is the proof."""
    records = Records(server_time=dt.datetime(2026, 1, 1, 9, 0, 0, tzinfo=dt.UTC))
    made = gateway(records, clock_skew_s=0.5)

    async def the_clock_moves(seconds: float) -> None:
        made.sleeps.slept.append(seconds)  # type: ignore[attr-defined]
        records.server_time = records.changed + dt.timedelta(seconds=1.5)

    made._sleep = the_clock_moves
    await made.append(NOTE)
    assert (made.sleeps.slept, records.reads, len(records.writes)) == ([1.5], 2, 1)  # type: ignore[attr-defined]
    dateless = Records(server_time=None)
    made = gateway(dateless, clock_skew_s=0.5)
    await made.append(NOTE)
    assert (made.sleeps.slept, dateless.reads, len(dateless.writes)) == ([1.5], 2, 1)  # type: ignore[attr-defined]


async def test_a_record_that_keeps_changing_is_a_retriable_conflict() -> None:
    """Refused on every round: WriteConflictError, which the engine retries later."""
    records = Records(server_time=dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC), refusals=99)
    with pytest.raises(WriteConflictError) as conflict:
        await gateway(records, max_rounds=4).append(NOTE)
    assert conflict.value.retriable
    assert records.reads == 4


async def test_find_or_create_converges_and_single_flights() -> None:
    """Three concurrent calls for one key in one worker: one create, the others wait for it
    and get its record. A later call (another worker, say) is refused as a duplicate and finds
    the record by its key."""
    inner = Inner()
    inner.gate.clear()
    made = gateway(Records(server_time=None), inner)
    calls = [made.find_or_create("Lead", "Key__c", "afu1-k", {"LastName": "X"}) for _ in range(3)]
    pending = asyncio.gather(*calls)
    await asyncio.sleep(0)
    inner.gate.set()
    results = await pending
    assert [r.created for r in results] == [True, False, False]
    assert len({r.id for r in results}) == 1
    assert inner.calls == ["create"]
    again = await gateway(Records(server_time=None), inner).find_or_create(
        "Lead", "Key__c", "afu1-k", {"LastName": "Y"}
    )
    assert (again.id, again.created) == (results[0].id, False)
    assert inner.calls == ["create", "create", "query"]


async def test_find_or_create_passes_on_other_failures() -> None:
    """A duplicate of some other record (nothing holds the key) is the caller's error; so is
    any other failure, and then the next caller tries on its own."""
    inner = Inner()
    inner.fail_next = GatewayError("Use one of these records?", error_code="DUPLICATES_DETECTED")
    made = gateway(Records(server_time=None), inner)
    with pytest.raises(GatewayError, match="Use one of these"):
        await made.find_or_create("Lead", "Key__c", "afu1-k", {})
    inner.gate.clear()
    inner.fail_next = GatewayError("validation", error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION")
    first = asyncio.ensure_future(made.find_or_create("Lead", "Key__c", "afu1-k", {}))
    second = asyncio.ensure_future(made.find_or_create("Lead", "Key__c", "afu1-k", {}))
    await asyncio.sleep(0)
    inner.gate.set()
    with pytest.raises(GatewayError, match="validation"):
        await first
    assert (await second).created is True


async def test_writes_to_one_record_take_turns_and_the_locks_are_forgotten() -> None:
    """Two holders of one key run one after the other; no lock outlives its users."""
    locks, order = KeyedLocks(), []

    async def hold(name: str) -> None:
        async with locks.hold("003000000000001"):
            order.append(f"{name} in")
            await asyncio.sleep(0)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order == ["a in", "a out", "b in", "b out"]
    assert len(locks) == 0
