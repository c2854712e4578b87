"""Batched, cached, single-flight lookups of Zendesk records by id.

Many webhooks arrive at once and each needs one or two people. :class:`Directory` gathers the
ids that concurrent callers ask for during ``linger_s`` (or until 100 are waiting) and fetches
them in one ``show_many`` call, so a burst of 1,000 webhooks costs about ten API calls, not a
thousand. Around that:

- **TTL cache.** A record found is kept ``ttl_s``; an id that matched nothing, ``miss_ttl_s``.
  The cache holds at most ``max_entries`` ids, the least recently used leave first.
- **Single flight.** An id already being fetched is not asked for again; its callers share the
  one answer.
- **Rate limits.** A 429 (or a 503) with Retry-After pauses the directory until then: lookups
  that would need a call fail at once with :class:`~zendesk.errors.RateLimited` instead of
  adding to the overload (cached ids are still served). A batch whose wait fits in
  ``max_wait_s`` waits it out and is tried once more.

Failures reach the callers as :mod:`zendesk.errors` exceptions; deciding what to do without the
record (the ingest degrades to "ids only") is theirs. Ids that are not decimal numbers cannot
be Zendesk ids and come back as not found without a call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from zendesk.client import MAX_IDS
from zendesk.errors import RateLimited, ZendeskError

T = TypeVar("T")
Fetch = Callable[[Sequence[str]], Awaitable[Mapping[str, T]]]


class Directory(Generic[T]):
    def __init__(
        self,
        fetch: Fetch[T],
        *,
        ttl_s: float = 300.0,
        miss_ttl_s: float = 60.0,
        linger_s: float = 0.002,
        max_batch: int = MAX_IDS,
        max_entries: int = 10_000,
        max_wait_s: float = 1.0,
        max_concurrent_calls: int = 4,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._fetch = fetch
        self.ttl_s = ttl_s
        self.miss_ttl_s = miss_ttl_s
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.max_entries = max_entries
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._cache: OrderedDict[str, tuple[float, T | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[T | None]] = {}
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(max_concurrent_calls)
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0
        self.hits = 0  # ids answered from the cache
        self.fetched = 0  # ids asked of Zendesk

    def cached(self, ids: Iterable[str]) -> dict[str, T | None] | None:
        """Each id's record if every one is answered by the cache now, else None (no call)."""
        now = self._clock()
        answers: dict[str, T | None] = {}
        for key in ids:
            entry = self._cache.get(key)
            if entry is not None and entry[0] > now:
                answers[key] = entry[1]
            elif key.isdigit():
                return None
            else:
                answers[key] = None
        for key in answers:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
        return answers

    async def get_many(self, ids: Iterable[str]) -> dict[str, T | None]:
        """Each id's record, or None for an id that matches nothing. Raises ZendeskError."""
        now = self._clock()
        answers: dict[str, T | None] = {}
        needed: list[str] = []
        for key in dict.fromkeys(ids):
            entry = self._cache.get(key)
            if entry is not None and entry[0] > now:
                self._cache.move_to_end(key)
                self.hits += 1
                answers[key] = entry[1]
            elif not key.isdigit():
                answers[key] = None
            else:
                needed.append(key)
        if any(key not in self._inflight for key in needed) and now < self._paused_until:
            wait = self._paused_until - now
            raise RateLimited(
                f"paused {wait:.1f}s more: Zendesk asked to slow down", retry_after_s=wait
            )
        waits = {key: self._inflight.get(key) or self._enqueue(key) for key in needed}
        for key, future in waits.items():
            answers[key] = await asyncio.shield(future)
        return answers

    async def close(self) -> None:
        """Cancel the calls in flight (their callers see CancelledError)."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- batching ---------------------------------------------------------------------------

    def _enqueue(self, key: str) -> asyncio.Future[T | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T | None] = loop.create_future()
        future.add_done_callback(_observed)
        self._inflight[key] = future
        self._pending.append(key)
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger_s, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[str]) -> None:
        try:
            async with self._slots:
                found = await self._patiently(batch)
        except asyncio.CancelledError:  # closing: nobody waits forever
            for key in batch:
                self._inflight.pop(key).cancel()
            raise
        except Exception as error:  # every caller of the batch gets the failure
            for key in batch:
                self._inflight.pop(key).set_exception(error)
            return
        now = self._clock()
        for key in batch:
            value = found.get(key)
            self._remember(key, value, now)
            self._inflight.pop(key).set_result(value)

    async def _patiently(self, batch: list[str]) -> Mapping[str, T]:
        self.fetched += len(batch)
        try:
            return await self._fetch(batch)
        except ZendeskError as error:
            wait = error.retry_after_s
            if wait is None:
                raise
            self._paused_until = max(self._paused_until, self._clock() + wait)
            if wait > self.max_wait_s:
                raise
        await self._sleep(wait)
        return await self._fetch(batch)

    def _remember(self, key: str, value: T | None, now: float) -> None:
        ttl = self.ttl_s if value is not None else self.miss_ttl_s
        self._cache[key] = (now + ttl, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)


def _observed(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: a caller that gave up waiting must not leave asyncio a
    'Future exception was never retrieved' warning."""
    if not future.cancelled():
        future.exception()
