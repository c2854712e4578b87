"""Writes whose result does not depend on how concurrent runs interleave.

:class:`ConsistentGateway` is the :class:`~pipeline.ports.FlowGateway` flows run against. It sits
in front of the rest of the stack (batching, the client) and adds three things:

**Writes to one record are serialised inside a worker.** ``update``, ``delete`` and ``append`` on
one record id (its first 15 characters) take that record's lock, so a worker never races itself.

**Appends lose no update** (``append``): read the fields and ``LastModifiedDate``, then
``PATCH`` with ``If-Unmodified-Since``; on ``412`` read again and retry. The check has one-second
resolution (an HTTP date), so on its own it lets a write through that lands in the same second
as the change it was read after. The gap is closed by writing only once the server's clock, the
``Date`` of the read, is past that second (plus ``clock_skew_s`` between the server that dates
answers and the one that dates records): a write made after such a read lands in a later second,
so it fails the precondition of every writer still holding the old date, and no write can land
in the old second after the read. Without a ``Date`` header the same ``LastModifiedDate`` read
twice, ``1 + clock_skew_s`` seconds apart, proves the same. The cost: appends to a record changed
within the last second or two wait for that long. A text already holding the write's marker is
not added again, so a redelivered event does not add its note twice.

**One record per business key** (``find_or_create``): create the record with the key in its
external-id field (unique in the org); if Salesforce refuses it as a duplicate (the unique field,
or a duplicate rule matching the record that holds the key), return the record holding the key.
So two workers creating for one key converge on one record, and the first one's fields stay. In
one worker, concurrent calls for one (object, key) are single-flighted: the later ones wait for
the first and return its record without a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from pipeline.catalogue.soql import quote
from pipeline.ports import (
    AppendWrite,
    ConversionResult,
    FindQuery,
    GatewayError,
    LeadConversion,
    SalesforceGateway,
    UpsertResult,
    appended,
)
from salesforce.client import VersionedRecord, checked_name
from salesforce.errors import PreconditionFailedError, WriteConflictError

# What a create refused because the record exists answers with: the unique external-id field,
# or a duplicate rule that matches the record holding the key.
DUPLICATE_CODES = frozenset({"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID"})


class ConditionalRecords(Protocol):
    """What an append needs of the client: a read that tells when the record last changed and
    the server's time, and a conditional update (:class:`~salesforce.client.SalesforceClient`)."""

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord: ...

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: dt.datetime | None = None,
    ) -> None: ...


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def _record_key(record_id: str) -> str:
    return record_id[:15]  # the 15- and 18-character forms of an id name one record


class ConsistentGateway:
    """A :class:`~pipeline.ports.FlowGateway` over ``inner`` (everything but the conditional
    reads and writes of an append, which go to ``records``: the client itself)."""

    def __init__(
        self,
        inner: SalesforceGateway,
        records: ConditionalRecords,
        *,
        clock_skew_s: float = 1.0,
        max_rounds: int = 20,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._records = records
        self._skew = dt.timedelta(seconds=clock_skew_s)
        self._max_rounds = max_rounds
        self._sleep = sleep
        self._monotonic = monotonic
        self._writing = KeyedLocks()  # record key -> the write in progress
        self._creating: dict[tuple[str, str, str], asyncio.Future[str | None]] = {}

    # --- straight through ---------------------------------------------------------------------

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        return await self.inner.create(sobject, fields)

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        return await self.inner.upsert(sobject, external_id_field, external_id, fields)

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        return await self.inner.get(sobject, record_id, fields)

    async def query(self, soql: str) -> list[dict[str, Any]]:
        return await self.inner.query(soql)

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        return await self.inner.find(query)

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult:
        return await self.inner.convert_lead(conversion)

    # --- one record at a time -----------------------------------------------------------------

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        async with self._writing.hold(_record_key(record_id)):
            await self.inner.update(sobject, record_id, fields)

    async def delete(self, sobject: str, record_id: str) -> None:
        async with self._writing.hold(_record_key(record_id)):
            await self.inner.delete(sobject, record_id)

    async def append(self, write: AppendWrite) -> None:
        """Read, then write only if nobody wrote since; again until it holds (``max_rounds``)."""
        async with self._writing.hold(_record_key(write.record_id)):
            seen: tuple[dt.datetime, float] | None = None  # without a server clock
            for _ in range(self._max_rounds):
                read = await self._records.read_for_update(
                    write.sobject, write.record_id, list(write.appends)
                )
                current = {name: _text(read.values.get(name)) for name in write.appends}
                values = {
                    name: appended(current[name], text)
                    for name, text in write.appends.items()
                    if write.marker not in current[name]
                }
                if not values:  # this event's text is there already (a redelivery)
                    if write.fields:
                        await self.inner.update(write.sobject, write.record_id, write.fields)
                    return
                if seen is None or seen[0] != read.last_modified:
                    seen = (read.last_modified, self._monotonic())
                wait = self._settle(read, self._monotonic() - seen[1])
                if wait > 0:
                    await self._sleep(wait)
                    continue
                try:
                    await self._records.update(
                        write.sobject,
                        write.record_id,
                        {**write.fields, **values},
                        if_unmodified_since=read.last_modified,
                    )
                except PreconditionFailedError:
                    continue  # someone wrote after our read: read again
                return
        raise WriteConflictError(
            f"{write.sobject} {write.record_id} changed during each of {self._max_rounds} "
            "attempts to append to it",
            error_code="WRITE_CONFLICT",
        )

    def _settle(self, read: VersionedRecord, unchanged_for_s: float) -> float:
        """Seconds to wait before a write based on ``read`` is safe (0: write now).

        Safe once the server's clock is past the second of the last change (plus the skew):
        after that, no write can land in that second, and ours will land in a later one.
        """
        changed = read.last_modified.replace(microsecond=0)
        safe_from = changed + dt.timedelta(seconds=1) + self._skew
        if read.server_time is not None:
            return max((safe_from - read.server_time).total_seconds(), 0.0)
        needed = (safe_from - changed).total_seconds()  # the same date seen this long
        return max(needed - unchanged_for_s, 0.0)

    # --- one record per key -------------------------------------------------------------------

    async def find_or_create(
        self, sobject: str, key_field: str, key: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        flight = (sobject.casefold(), key_field.casefold(), key.casefold())
        while (first := self._creating.get(flight)) is not None:
            record_id = await asyncio.shield(first)
            if record_id is not None:
                return UpsertResult(record_id, created=False)
            # The first failed (its caller has the error); this call tries on its own.
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._creating[flight] = future
        record_id = None
        try:
            result = await self._create_or_find(sobject, key_field, key, fields)
            record_id = result.id
            return result
        finally:
            del self._creating[flight]
            future.set_result(record_id)

    async def _create_or_find(
        self, sobject: str, key_field: str, key: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        try:
            record_id = await self.inner.create(sobject, {**fields, key_field: key})
        except GatewayError as error:
            if error.error_code not in DUPLICATE_CODES:
                raise
            found = await self._holding(sobject, key_field, key)
            if found is None:
                raise  # a duplicate of some other record: the flow's to resolve
            return UpsertResult(found, created=False)
        return UpsertResult(record_id, created=True)

    async def _holding(self, sobject: str, key_field: str, key: str) -> str | None:
        """The id of the record whose ``key_field`` is ``key``, if any."""
        soql = (
            f"SELECT Id FROM {checked_name(sobject)} "  # noqa: S608 - names checked, value quoted
            f"WHERE {checked_name(key_field)} = {quote(key)} LIMIT 1"
        )
        rows = await self.inner.query(soql)
        return str(rows[0]["Id"]) if rows else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


__all__ = ["DUPLICATE_CODES", "ConditionalRecords", "ConsistentGateway", "KeyedLocks"]
