"""Auto-batching: single-record writes and finds from many concurrent flow runs, sent together.

:class:`BatchingGateway` is a :class:`pipeline.ports.SalesforceGateway` in front of a
:class:`~salesforce.client.SalesforceClient`. Each flow run calls ``create``, ``update`` or
``upsert`` for one record; the gateway queues the call in a **bucket** — one per (operation,
sObject, external-id field) — sends the bucket's records as one Collections call
(``create_many`` / ``update_many`` / ``upsert_many``, ``allOrNone=false``, ≤200 records), and
hands each record's outcome back to its own caller, by position (Collections results come in
request order). Finds on one field are coalesced the same way (below). Everything else (get,
query, delete, convert_lead, describe …) goes straight to the client.

**The flush rule** (group commit, as databases batch log writes). A bucket sends everything it
holds, in calls of up to ``max_batch`` records, when:

1. a call arrives and the bucket has no call in flight — at the end of the current event-loop
   turn, so a lone call waits for nothing but calls started together still share one call;
   except that with ``gather_s`` (0 by default) a bucket sends at most one call per
   ``gather_s`` this way: a call that arrives sooner after the bucket's last one waits for the
   rest of that interval. A quiet worker's calls go at once; a busy worker, whose runs reach
   Salesforce one by one, sends what gathered in the interval as one call instead of each alone;
2. ``max_batch`` records are waiting;
3. one of the bucket's calls returns (the records that gathered meanwhile go next — with
   ``gather_s``, once the interval since the bucket's last call has passed: a call that returns
   quickly does not open a path for a small call of its own);
4. ``max_linger_s`` has passed since the first waiting record arrived (a bound for when a call in
   flight is slow).

So latency is added only under load, and at most ``max_linger_s`` (or ``gather_s``).

**Finds.** Concurrent finds of one shape — same sObject, one ``=`` condition on the same
field, same columns and limit — go out as one query, ``WHERE field IN (…) ORDER BY
CreatedDate ASC, Id ASC LIMIT n*k`` (k values, n the per-find limit), each value once however
many callers sought it in whatever case. The rows come back in the one order every single find
uses, so the rows of one value are that value's oldest matches; each caller gets its value's
first n, exactly its own query's answer. Exactness rests on three rules:

- a value with fewer than n rows in a result cut short by the LIMIT may have more matches
  beyond it: its callers get a single find instead;
- rows are matched to values as SOQL's ``=`` matches text, case-insensitively. Only values
  whose case-insensitive equality has one meaning are coalesced — printable ASCII, no surrounding
  whitespace, at most 4,000 characters (SOQL's limit per WHERE string, so that error stays the
  caller's own); others, like finds on several fields, go out alone. A row that matches no
  value, or that is not ASCII when several values are sought, sends every value of the query
  to a single find rather than guess;
- a query stays within 100,000 characters (SOQL's statement limit) and one 2,000-row page;
  the client moves a query too long for a URL into a Composite body.

A failed query fails each of its callers with their own copy of the error, as a single find
would have failed.

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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pipeline.catalogue.soql import quote, select_in_query
from pipeline.ports import (
    ConversionResult,
    FindQuery,
    LeadConversion,
    RecordOutcome,
    RecordWrite,
    SalesforceGateway,
    UpsertResult,
)
from salesforce.client import COLLECTION_SIZE, checked_id, checked_name
from salesforce.errors import SalesforceError

OPERATIONS = ("create", "update", "upsert", "find")
SOQL_MAX_CHARS = 100_000  # "Maximum length of SOQL statements: by default, 100,000 characters"
SOQL_MAX_STRING = 4_000  # "4,000 characters for each string within a WHERE clause"
QUERY_PAGE = 2_000  # rows in one query response page (the default batch size)
MAX_LINGER_S = 0.010  # the default bound on a wait behind a call in flight


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
    """Counters per operation (``create``, ``update``, ``upsert``, ``find``) since the gateway
    was made."""

    requests: Mapping[str, int]  # single-record calls (and coalescable finds) received
    calls: Mapping[str, int]  # Collections calls and find queries made (a coalesced query's
    # single-find fallbacks count; the client may resend row-locked records)
    records: Mapping[str, int]  # records (distinct values, for finds) sent in those calls
    passthrough: int  # port calls sent alone: get, query, delete, convert_lead, other finds

    @property
    def calls_per_request(self) -> float:
        requests = sum(self.requests.values())
        return sum(self.calls.values()) / requests if requests else 0.0


@dataclass(slots=True, eq=False)
class _Entry:
    # A write's RecordWrite (an upsert's fields carry its external id, as upsert_many takes
    # them), or the value a find seeks.
    item: Any
    key: str | None  # the record a write writes, for conflicts; None for creates and finds
    future: asyncio.Future[Any]  # a RecordOutcome for writes, the rows for finds


@dataclass(slots=True, eq=False)
class _Bucket:
    operation: str
    sobject: str
    external_id_field: str | None
    shape: FindQuery | None = None  # a find bucket's query, its where value aside
    pending: deque[_Entry] = field(default_factory=deque)
    in_flight: int = 0
    busy: set[str] = field(default_factory=set)  # keys in calls not yet returned
    # A flush armed for later, and the loop time it is due. The time is kept here: uvloop
    # returns a plain Handle, without ``when()``, for a delay under half a millisecond.
    timer: asyncio.Handle | None = None
    timer_due: float = float("inf")
    flush_scheduled: bool = False
    last_sent: float = float("-inf")  # the loop time its last call went out


class BatchingGateway:
    """Coalesces concurrent single-record writes into sObject Collections calls, and
    concurrent finds on one field into one query.

    ``max_linger_s`` bounds how long a record waits while its bucket has a call in flight;
    ``gather_s`` the least time between an idle bucket's calls; ``max_batch`` (1 to 200) is the
    most records per call. Attributes the gateway does not define (``describe``, ``limits``,
    ``api_usage`` …) are the client's.
    """

    def __init__(
        self,
        client: CollectionsClient,
        *,
        max_linger_s: float = MAX_LINGER_S,
        max_batch: int = 200,
        gather_s: float = 0.0,
    ) -> None:
        if not 1 <= max_batch <= COLLECTION_SIZE:
            raise ValueError(f"max_batch must be within 1..{COLLECTION_SIZE}")
        if max_linger_s < 0 or gather_s < 0:
            raise ValueError("max_linger_s and gather_s must not be negative")
        self._client = client
        self._max_linger_s = max_linger_s
        self._gather_s = gather_s
        self._max_batch = max_batch
        self._buckets: dict[tuple[Any, ...], _Bucket] = {}
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

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        """The rows ``query`` selects; coalesced with concurrent finds of its shape when that
        can be exact (see the module docstring), else sent alone."""
        if not _coalescable(query):
            self._passthrough += 1
            return await self._client.find(query)
        [(field_name, value)] = query.where
        shape = replace(query, where=((field_name, ""),))
        rows: list[dict[str, Any]] = await self._enqueue(("find", shape), value, None, shape)
        return rows

    async def _enqueue(
        self,
        key: tuple[Any, ...],
        item: Any,
        conflict: str | None,
        shape: FindQuery | None = None,
    ) -> Any:
        if self._closed:
            raise RuntimeError("BatchingGateway is closed")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket("find", shape.sobject, None, shape) if shape else _Bucket(*key)
            self._buckets[key] = bucket
        entry = _Entry(item, conflict, asyncio.get_running_loop().create_future())
        self._requests[bucket.operation] += 1
        bucket.pending.append(entry)
        loop = asyncio.get_running_loop()
        if bucket.in_flight:
            linger = self._max_linger_s
        else:  # idle: at once, unless its last call went out less than gather_s ago
            linger = bucket.last_sent + self._gather_s - loop.time()
        if linger <= 0 or len(bucket.pending) >= self._max_batch:
            if not bucket.flush_scheduled:
                bucket.flush_scheduled = True
                loop.call_soon(self._flush, bucket)
        else:
            self._arm(bucket, linger)
        # A cancelled caller cancels its future: _take skips it, or _run discards its result.
        return await entry.future

    def _flush(self, bucket: _Bucket) -> None:
        bucket.flush_scheduled = False
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        while batch := self._take(bucket):
            bucket.last_sent = asyncio.get_running_loop().time()
            bucket.in_flight += 1
            bucket.busy.update(e.key for e in batch if e.key is not None)
            self._calls[bucket.operation] += 1
            self._records[bucket.operation] += (
                len(batch) if bucket.shape is None else len({_fold(e.item) for e in batch})
            )
            task = asyncio.get_running_loop().create_task(self._run(bucket, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # What is left waits on keys in flight; the call holding them flushes when it returns.

    def _take(self, bucket: _Bucket) -> list[_Entry]:
        """The next call: waiting records in order, skipping cancelled ones and conflicts."""
        if bucket.shape is not None:
            return self._take_finds(bucket, bucket.shape)
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

    def _take_finds(self, bucket: _Bucket, shape: FindQuery) -> list[_Entry]:
        """The next query: waiting finds in order, as many distinct values as fit its limits."""
        batch: list[_Entry] = []
        values: set[str] = set()
        most = min(self._max_batch, QUERY_PAGE // shape.limit)
        # The LIMIT is written at its widest, so the statement never outgrows the count.
        length = len(_in_query(replace(shape, limit=QUERY_PAGE), ["x"])) - len("'x'")
        while bucket.pending:
            entry = bucket.pending[0]
            if entry.future.done():
                bucket.pending.popleft()
                continue
            value = _fold(entry.item)
            if value not in values:
                cost = len(quote(entry.item)) + len(", ")
                if len(values) == most or length + cost > SOQL_MAX_CHARS:
                    break
                values.add(value)
                length += cost
            batch.append(bucket.pending.popleft())
        return batch

    async def _run(self, bucket: _Bucket, batch: list[_Entry]) -> None:
        try:
            if bucket.shape is not None:
                await self._find_many(bucket.shape, batch)
            else:
                await self._write_many(bucket, batch)
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
            self._flush_when_due(bucket)

    def _flush_when_due(self, bucket: _Bucket) -> None:
        """Rule 3: send what waits, but no sooner than ``gather_s`` after the last call."""
        loop = asyncio.get_running_loop()
        wait = bucket.last_sent + self._gather_s - loop.time()
        if wait <= 0 or self._closed or len(bucket.pending) >= self._max_batch:
            self._flush(bucket)
        else:
            self._arm(bucket, wait)

    def _arm(self, bucket: _Bucket, delay: float) -> None:
        """A flush of ``bucket`` in ``delay`` seconds, unless one is due sooner (a linger set
        behind a call in flight can be due later than the interval)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if bucket.timer is not None:
            if bucket.timer_due <= due:
                return
            bucket.timer.cancel()
        bucket.timer = loop.call_later(delay, self._flush, bucket)
        bucket.timer_due = due

    async def _write_many(self, bucket: _Bucket, batch: list[_Entry]) -> None:
        outcomes = await self._send(bucket, [e.item for e in batch])
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

    async def _find_many(self, shape: FindQuery, batch: list[_Entry]) -> None:
        """One query for the batch's values, rows handed to each value's callers; the values it
        cannot answer exactly take a single find each."""
        groups: dict[str, list[_Entry]] = {}
        for entry in batch:
            groups.setdefault(_fold(entry.item), []).append(entry)
        values = [entries[0].item for entries in groups.values()]
        field_name = shape.where[0][0]
        limit = shape.limit * len(values)
        if len(values) == 1:  # nothing to coalesce: the single find, as it would have gone
            rows = await self._client.find(replace(shape, where=((field_name, values[0]),)))
            _answer(groups[_fold(values[0])], rows)
            return
        rows = await self._client.query(_in_query(shape, values))
        found = _by_value(rows, field_name, groups)
        cut_short = len(rows) >= limit
        alone: list[str] = []
        for value, entries in groups.items():
            mine = found.get(value) if found is not None else None
            if mine is not None and _complete(mine, cut_short, shape.limit):
                _answer(entries, [_project(r, shape) for r in mine[: shape.limit]])
            else:
                alone.append(entries[0].item)
        if alone:
            self._calls["find"] += len(alone)
            await asyncio.gather(*(self._find_alone(shape, v, groups[_fold(v)]) for v in alone))

    async def _find_alone(self, shape: FindQuery, value: str, entries: list[_Entry]) -> None:
        field_name = shape.where[0][0]
        try:
            rows = await self._client.find(replace(shape, where=((field_name, value),)))
        except Exception as exc:  # this value's own failure: its callers raise it
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(_own_copy(exc))
            return
        _answer(entries, rows)

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


def _coalescable(query: FindQuery) -> bool:
    """A find whose rows can be told apart by value exactly (see the module docstring)."""
    if len(query.where) != 1 or not 1 <= query.limit <= QUERY_PAGE // 2:
        return False
    [(_, value)] = query.where
    return (
        isinstance(value, str)
        and 0 < len(value) <= SOQL_MAX_STRING
        and value.isascii()
        and value.isprintable()
        and value == value.strip()
    )


def _fold(value: str) -> str:
    """A value as SOQL's ``=`` compares text: without case (ASCII only, see _coalescable)."""
    return value.lower()


def _complete(rows: list[dict[str, Any]], cut_short: bool, limit: int) -> bool:
    """Whether a value's rows in the coalesced result are all its own query would return: the
    result was not cut short by the LIMIT, or the value already has its ``limit`` oldest."""
    return not cut_short or len(rows) >= limit


def _in_query(shape: FindQuery, values: Sequence[str]) -> str:
    """The coalesced query: the shape's columns (and the filter field, to match rows back)."""
    field_name = shape.where[0][0]
    columns = shape.fields if field_name in shape.fields else (*shape.fields, field_name)
    limit = shape.limit * len(values)
    return select_in_query(shape.sobject, columns, field_name, values, limit)


def _by_value(
    rows: list[dict[str, Any]], field_name: str, groups: Mapping[str, object]
) -> dict[str, list[dict[str, Any]]] | None:
    """Rows per sought value (lower-cased), in query order; None when a row cannot be placed
    with certainty (matches no value, or is not ASCII while several values are sought)."""
    found: dict[str, list[dict[str, Any]]] = {value: [] for value in groups}
    for row in rows:
        stored = row.get(field_name)
        if not isinstance(stored, str):
            return None
        if stored.isascii():
            value = _fold(stored)
        elif len(found) == 1:
            [value] = found
        else:
            return None
        if value not in found:
            return None
        found[value].append(row)
    return found


def _project(row: dict[str, Any], shape: FindQuery) -> dict[str, Any]:
    """The row as the caller's own query selects it: the filter field only if asked for."""
    field_name = shape.where[0][0]
    if field_name in shape.fields:
        return row
    return {k: v for k, v in row.items() if k != field_name}


def _answer(entries: list[_Entry], rows: list[dict[str, Any]]) -> None:
    for entry in entries:
        if not entry.future.done():  # the caller was cancelled after the query was sent
            entry.future.set_result([dict(row) for row in rows])  # each caller its own rows


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
