"""Directory: concurrent lookups share one call, answers are cached, rate limits pause it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from zendesk.directory import Directory
from zendesk.errors import AuthenticationFailed, RateLimited, ServerError


class FakeZendesk:
    """A show_many that records its calls; ``failures`` are raised first, in order."""

    def __init__(self, known: Sequence[str] = (), failures: Sequence[Exception] = ()) -> None:
        self.known = set(known)
        self.failures = list(failures)
        self.calls: list[list[str]] = []

    async def show_many(self, ids: Sequence[str]) -> Mapping[str, str]:
        self.calls.append(list(ids))
        await asyncio.sleep(0)  # an answer arrives later, like over a socket
        if self.failures:
            raise self.failures.pop(0)
        return {key: f"user {key}" for key in ids if key in self.known}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(zd: FakeZendesk, clock: Clock | None = None, **options: float) -> Directory[str]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    found = Directory(zd.show_many, clock=clock or Clock(), sleep=sleep, **options)  # type: ignore[arg-type]
    found.waits = waits  # type: ignore[attr-defined]
    return found


async def test_concurrent_lookups_share_one_call() -> None:
    """300 webhooks asking at once for 150 different people cost two calls of at most 100 ids."""
    zd = FakeZendesk(known=[str(i) for i in range(150)])
    users = directory(zd)
    answers = await asyncio.gather(*(users.get_many([str(i % 150)]) for i in range(300)))
    assert answers[7] == {"7": "user 7"}
    assert sorted(len(call) for call in zd.calls) == [50, 100]
    assert sorted(i for call in zd.calls for i in map(int, call)) == list(range(150))


async def test_answers_are_cached_until_their_ttl() -> None:
    """A second lookup within the TTL costs nothing; after it, Zendesk is asked again."""
    zd, clock = FakeZendesk(known=["1"]), Clock()
    users = directory(zd, clock, ttl_s=300, miss_ttl_s=60)
    assert await users.get_many(["1", "2"]) == {"1": "user 1", "2": None}
    clock.now += 59
    assert await users.get_many(["1", "2"]) == {"1": "user 1", "2": None}
    assert (len(zd.calls), users.hits) == (1, 2)
    clock.now += 2  # the miss expired, the hit did not
    await users.get_many(["1", "2"])
    assert zd.calls[1:] == [["2"]]
    clock.now += 300
    await users.get_many(["1"])
    assert zd.calls[2:] == [["1"]]


async def test_ids_that_cannot_be_zendesk_ids_cost_no_call() -> None:
    """Zendesk ids are numbers: 'u-77' from another helpdesk is not looked up."""
    zd = FakeZendesk()
    assert await directory(zd).get_many(["u-77", ""]) == {"u-77": None, "": None}
    assert zd.calls == []


async def test_a_failure_reaches_every_caller_of_the_batch() -> None:
    """A 5xx fails the lookups it answered, and the next lookup asks again."""
    zd = FakeZendesk(known=["1"], failures=[ServerError("HTTP 503", status=503)])
    users = directory(zd)
    results = await asyncio.gather(
        *(users.get_many(["1"]) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ServerError) for r in results)
    assert await users.get_many(["1"]) == {"1": "user 1"}
    assert len(zd.calls) == 2


async def test_a_short_retry_after_is_waited_out_once() -> None:
    """A 429 asking for 1 s, within max_wait_s, is waited and the batch tried again."""
    zd = FakeZendesk(known=["1"], failures=[RateLimited("HTTP 429", retry_after_s=1)])
    users = directory(zd, max_wait_s=2)
    assert await users.get_many(["1"]) == {"1": "user 1"}
    assert users.waits == [1]  # type: ignore[attr-defined]
    assert len(zd.calls) == 2


async def test_a_long_retry_after_pauses_lookups_until_then() -> None:
    """A 429 asking for 60 s fails the batch, and lookups that would call Zendesk in the next
    60 s fail at once without calling; cached answers are still served; then it resumes."""
    zd, clock = FakeZendesk(known=["1", "2"]), Clock()
    users = directory(zd, clock, max_wait_s=1)
    await users.get_many(["1"])
    zd.failures.append(RateLimited("HTTP 429", retry_after_s=60))
    with pytest.raises(RateLimited):
        await users.get_many(["2"])
    clock.now += 30
    with pytest.raises(RateLimited, match="paused"):
        await users.get_many(["2"])
    assert len(zd.calls) == 2  # the pause cost no call
    assert await users.get_many(["1"]) == {"1": "user 1"}  # cached
    clock.now += 31
    assert await users.get_many(["2"]) == {"2": "user 2"}
    assert users.waits == []  # type: ignore[attr-defined]


async def test_without_retry_after_nothing_pauses() -> None:
    """Negative control: a 401 (no Retry-After) fails the call but does not pause the next."""
    zd = FakeZendesk(known=["1"], failures=[AuthenticationFailed("HTTP 401", status=401)])
    users = directory(zd)
    with pytest.raises(AuthenticationFailed):
        await users.get_many(["1"])
    assert await users.get_many(["1"]) == {"1": "user 1"}


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    """Single flight: one caller's timeout leaves the shared call and the other callers alone."""
    gate = asyncio.Event()

    async def slow(ids: Sequence[str]) -> Mapping[str, str]:
        await gate.wait()
        return {key: f"user {key}" for key in ids}

    users: Directory[str] = Directory(slow)
    impatient = asyncio.create_task(asyncio.wait_for(users.get_many(["1"]), 0.01))
    patient = asyncio.create_task(users.get_many(["1"]))
    with pytest.raises(TimeoutError):
        await impatient
    gate.set()
    assert await patient == {"1": "user 1"}
    await users.close()


async def test_the_cache_is_bounded() -> None:
    """Past max_entries the least recently used ids leave the cache."""
    zd = FakeZendesk(known=[str(i) for i in range(10)])
    users = directory(zd, max_entries=3)
    for i in range(5):
        await users.get_many([str(i)])
    await users.get_many(["4", "3", "2"])
    assert users.hits == 3
    await users.get_many(["0"])
    assert zd.calls[-1] == ["0"]


async def test_cached_answers_without_a_call_or_says_it_cannot() -> None:
    """cached() serves what the cache holds now and None as soon as one id would need a call."""
    zd, clock = FakeZendesk(known=["1"]), Clock()
    users = directory(zd, clock, ttl_s=10)
    assert users.cached(["1"]) is None
    await users.get_many(["1", "2"])
    assert users.cached(["1", "2", "u-7"]) == {"1": "user 1", "2": None, "u-7": None}
    assert users.cached([]) == {}
    clock.now += 11
    assert users.cached(["1"]) is None
    assert len(zd.calls) == 1
