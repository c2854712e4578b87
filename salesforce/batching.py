"""Auto-batching: single-record writes from many concurrent flow runs, sent as sObject Collections.

:class:`BatchingGateway` is a :class:`pipeline.ports.SalesforceGateway` in front of a
:class:`~salesforce.client.SalesforceClient`. Each flow run calls ``create``, ``update`` or
``upsert`` for one record; the gateway queues the call in a **bucket** — one per (operation,
sObject, external-id field) — sends the bucket's records as one Collections call
(``create_many`` / ``update_many`` / ``upsert_many``, ``allOrNone=false``, ≤200 records), and
hands each record's outcome back to its own caller, by position (Collections results come in
request order). Everything else (get, query, delete, convert_lead, describe …) goes straight to
the client.

**The flush rule** (group commit, as databases batch log writes). A bucket sends everything it
holds, in calls of up to ``max_batch`` records, when:

1. a call arrives and the bucket has no call in flight — at the end of the current event-loop
   turn, so a lone call waits for nothing but calls started together still share one call;
2. ``max_batch`` records are waiting;
3. one of the bucket's calls returns (the records that gathered meanwhile go next);
4. ``max_linger_s`` has passed since the first waiting record arrived (a bound for when a call in
   flight is slow).

So latency is added only under load, and at most ``max_linger_s``.

**Conflicts.** Salesforce rejects the same record id twice in one update call and the same
external id twice in one upsert call. A record whose key (the 15-character id; the case-folded
external id) is in the call being built, or in a call still in flight, waits for that call to
return: writes to one record go out one after the other, in the order they were made.

**Errors.** A per-record failure raises in its own caller only. A whole-call failure (transport,
5xx, auth; the client reports it as every record's error) raises in every caller of the call,
with the same class and flags (``ambiguous`` included). Each caller raises its own copy, so
tracebacks and handling stay per caller.

**Cancellation.** A caller cancelled while queued is left out of the call; one cancelled after
the call was sent has its result discarded. :meth:`BatchingGateway.close` sends what is queued
and waits for every call in flight; it does not close the client (its owner does).
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.ports import (
    ConversionResult,
    LeadConversion,
    RecordOutcome,
    RecordWrite,
    SalesforceGateway,
    UpsertResult,
)
from salesforce.client import COLLECTION_SIZE, checked_id, checked_name
from salesforce.errors import SalesforceError

OPERATIONS = ("create", "update", "upsert")


class CollectionsClient(SalesforceGateway, Protocol):
    """What the gateway needs of a client: the port, plus the Collections writes."""

    async def create_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]: ...

    async def update_many(
        self, records: Sequence[RecordWrite], *, all_or_none: bool = False
    ) -> list[RecordOutcome]: ...

    async def upsert_many(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[RecordOutcome]: ...


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters per operation (``create``, ``update``, ``upsert``) since the gateway was made."""

    requests: Mapping[str, int]  # single-record calls received
    calls: Mapping[str, int]  # Collections calls made (the client may resend row-locked records)
    records: Mapping[str, int]  # records sent in those calls (cancelled callers are not sent)
    passthrough: int  # port calls sent unbatched: get, query, delete, convert_lead

    @property
    def calls_per_request(self) -> float:
        requests = sum(self.requests.values())
        return sum(self.calls.values()) / requests if requests else 0.0


@dataclass(slots=True, eq=False)
class _Entry:
    record: RecordWrite  # an upsert's fields carry its external id, as upsert_many takes them
    key: str | None  # the record it writes, for conflicts; None for creates
    future: asyncio.Future[RecordOutcome]


@dataclass(slots=True, eq=False)
class _Bucket:
    operation: str
    sobject: str
    external_id_field: str | None
    pending: deque[_Entry] = field(default_factory=deque)
    in_flight: int = 0
    busy: set[str] = field(default_factory=set)  # keys in calls not yet returned
    timer: asyncio.TimerHandle | None = None
    flush_scheduled: bool = False


class BatchingGateway:
    """Coalesces concurrent single-record writes into sObject Collections calls.

    ``max_linger_s`` bounds how long a record waits while its bucket has a call in flight;
    ``max_batch`` (1 to 200) is the most records per call. Attributes the gateway does not define
    (``describe``, ``limits``, ``api_usage`` …) are the client's.
    """

    def __init__(
        self, client: CollectionsClient, *, max_linger_s: float = 0.010, max_batch: int = 200
    ) -> None:
        if not 1 <= max_batch <= COLLECTION_SIZE:
            raise ValueError(f"max_batch must be within 1..{COLLECTION_SIZE}")
        if max_linger_s < 0:
            raise ValueError("max_linger_s must not be negative")
        self._client = client
        self._max_linger_s = max_linger_s
        self._max_batch = max_batch
        self._buckets: dict[tuple[str, str, str | None], _Bucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._requests: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._records: Counter[str] = Counter()
        self._passthrough = 0
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never the client's internals (nor during copy or pickling)
            raise AttributeError(name)
        return getattr(self._client, name)

    async def __aenter__(self) -> BatchingGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def stats(self) -> BatchStats:
        zero = dict.fromkeys(OPERATIONS, 0)
        return BatchStats(
            requests={**zero, **self._requests},
            calls={**zero, **self._calls},
            records={**zero, **self._records},
            passthrough=self._passthrough,
        )

    async def close(self) -> None:
        """Send what is queued, wait for every call in flight; later writes raise."""
        self._closed = True
        for bucket in self._buckets.values():
            self._flush(bucket)
        while self._tasks:  # a returning call may send records that waited on its keys
            await asyncio.wait(set(self._tasks))

    # --- batched writes -----------------------------------------------------------------------

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        record = RecordWrite(checked_name(sobject), dict(fields))
        outcome = await self._enqueue(("create", sobject, None), record, None)
        return _record_id(outcome)

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        body = {k: v for k, v in fields.items() if k.lower() != "id"}  # the id goes beside them
        record = RecordWrite(checked_name(sobject), body, id=checked_id(record_id))
        # 15- and 18-character forms of one id name the same record; the first 15 tell.
        await self._enqueue(("update", sobject, None), record, record_id[:15])

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        checked_name(sobject)
        checked_name(external_id_field)
        if not isinstance(external_id, str) or not external_id:
            # Collections cannot carry an empty key; the single call reports it as Salesforce does.
            self._passthrough += 1
            return await self._client.upsert(sobject, external_id_field, external_id, fields)
        body = {k: v for k, v in fields.items() if k not in (external_id_field, "Id")}
        body[external_id_field] = external_id
        # External ids match case-insensitively unless the field is case-sensitive: splitting
        # two keys that differ only in case costs a call, merging them would fail both.
        bucket = ("upsert", sobject, external_id_field)
        outcome = await self._enqueue(bucket, RecordWrite(sobject, body), external_id.casefold())
        return UpsertResult(id=_record_id(outcome), created=outcome.created)

    async def _enqueue(
        self, key: tuple[str, str, str | None], record: RecordWrite, conflict: str | None
    ) -> RecordOutcome:
        if self._closed:
            raise RuntimeError("BatchingGateway is closed")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(*key)
        entry = _Entry(record, conflict, asyncio.get_running_loop().create_future())
        self._requests[bucket.operation] += 1
        bucket.pending.append(entry)
        if bucket.in_flight == 0 or len(bucket.pending) >= self._max_batch:
            if not bucket.flush_scheduled:
                bucket.flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush, bucket)
        elif bucket.timer is None:
            loop = asyncio.get_running_loop()
            bucket.timer = loop.call_later(self._max_linger_s, self._flush, bucket)
        # A cancelled caller cancels its future: _take skips it, or _run discards its result.
        return await entry.future

    def _flush(self, bucket: _Bucket) -> None:
        bucket.flush_scheduled = False
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        while batch := self._take(bucket):
            bucket.in_flight += 1
            bucket.busy.update(e.key for e in batch if e.key is not None)
            self._calls[bucket.operation] += 1
            self._records[bucket.operation] += len(batch)
            task = asyncio.get_running_loop().create_task(self._run(bucket, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # What is left waits on keys in flight; the call holding them flushes when it returns.

    def _take(self, bucket: _Bucket) -> list[_Entry]:
        """The next call: waiting records in order, skipping cancelled ones and conflicts."""
        batch: list[_Entry] = []
        keys: set[str] = set()
        held: list[_Entry] = []
        while bucket.pending and len(batch) < self._max_batch:
            entry = bucket.pending.popleft()
            if entry.future.done():
                continue
            if entry.key is not None and (entry.key in bucket.busy or entry.key in keys):
                held.append(entry)
                continue
            batch.append(entry)
            if entry.key is not None:
                keys.add(entry.key)
        bucket.pending.extendleft(reversed(held))
        return batch

    async def _run(self, bucket: _Bucket, batch: list[_Entry]) -> None:
        try:
            outcomes = await self._send(bucket, [e.record for e in batch])
            if len(outcomes) != len(batch):
                raise SalesforceError(
                    f"sObject Collections gave {len(outcomes)} results for {len(batch)} records"
                )
            for entry, outcome in zip(batch, outcomes, strict=True):
                if entry.future.done():  # the caller was cancelled after the call was sent
                    continue
                if outcome.error is not None:
                    entry.future.set_exception(_own_copy(outcome.error))
                else:
                    entry.future.set_result(outcome)
        except asyncio.CancelledError:
            for entry in batch:
                entry.future.cancel()
            raise
        except Exception as exc:  # a failure the client did not report per record
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(_own_copy(exc))
        finally:
            bucket.in_flight -= 1
            bucket.busy.difference_update(e.key for e in batch if e.key is not None)
        if bucket.pending:
            self._flush(bucket)

    async def _send(self, bucket: _Bucket, records: list[RecordWrite]) -> list[RecordOutcome]:
        if bucket.operation == "create":
            return await self._client.create_many(records)
        if bucket.operation == "update":
            return await self._client.update_many(records)
        assert bucket.external_id_field is not None  # upsert buckets always have one
        bodies = [r.fields for r in records]
        return await self._client.upsert_many(bucket.sobject, bucket.external_id_field, bodies)

    # --- straight through ---------------------------------------------------------------------

    async def delete(self, sobject: str, record_id: str) -> None:
        self._passthrough += 1
        await self._client.delete(sobject, record_id)

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        self._passthrough += 1
        return await self._client.get(sobject, record_id, fields)

    async def query(self, soql: str) -> list[dict[str, Any]]:
        self._passthrough += 1
        return await self._client.query(soql)

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult:
        self._passthrough += 1
        return await self._client.convert_lead(conversion)


def _record_id(outcome: RecordOutcome) -> str:
    if outcome.id is None:
        raise SalesforceError("sObject Collections reported success without an id")
    return outcome.id


def _own_copy(exc: BaseException) -> BaseException:
    """A caller's own copy of an error that may be shared (a whole-call failure is every
    record's error): re-raising one instance in many callers would pile all their frames onto
    one traceback. The copy keeps class, message, flags, cause and the original traceback."""
    try:
        clone = copy.copy(exc)
    except Exception:  # a class whose constructor copy cannot call: share the instance rather
        return exc  # than leave the other callers of the call waiting forever
    clone.__cause__, clone.__context__ = exc.__cause__, exc.__context__
    clone.__suppress_context__ = exc.__suppress_context__
    return clone.with_traceback(exc.__traceback__)


__all__ = ["BatchStats", "BatchingGateway", "CollectionsClient"]
