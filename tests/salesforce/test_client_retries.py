"""The retry matrix: what is retried, what is not, and how often, against real HTTP failures."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from salesforce.client import SalesforceClient
from salesforce.errors import (
    ConcurrentLimitError,
    ConnectionLostError,
    DailyLimitError,
    RequestTimeoutError,
    RowLockError,
    SalesforceError,
    ServerError,
    ValidationError,
)
from salesforce.transport import backoff_delay, should_retry
from tests.salesforce.conftest import KeyPair, NoSleep, settings_for
from tests.salesforce.fake_org import DATA, FakeOrg, hang, json_response, reply, reset, sf_error

LEAD = "00Q000000000001AAA"
CREATED = reply(201, {"id": LEAD, "success": True, "errors": []})
HTML_503 = reply(
    503, "<html><head><title>Service Unavailable</title></head><body>down</body></html>"
)
LOCK = sf_error(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
CONCURRENT = sf_error(
    403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded"
)
DAILY = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
UNAVAILABLE = sf_error(503, "SERVER_UNAVAILABLE", "Server too busy")


async def test_get_is_retried_on_503_json_and_html(
    org: FakeOrg, client: SalesforceClient, no_sleep: NoSleep
) -> None:
    """An idempotent GET survives a JSON 503 then a CDN's HTML 503, with two backoff pauses."""
    org.on("GET", f"{DATA}/limits", UNAVAILABLE, HTML_503, reply(200, {"ok": 1}))
    assert await client.limits() == {"ok": 1}
    assert len(org.calls("GET", f"{DATA}/limits")) == 3
    assert len(no_sleep.delays) == 2


async def test_attempts_are_bounded(org: FakeOrg, client: SalesforceClient) -> None:
    """After max_attempts the last error is raised, still marked retriable for the engine."""
    org.on("GET", f"{DATA}/limits", HTML_503)
    with pytest.raises(ServerError) as caught:
        await client.limits()
    assert caught.value.retriable
    assert "Service Unavailable" in caught.value.message
    assert len(org.calls("GET", f"{DATA}/limits")) == 3


async def test_create_is_not_retried_after_a_5xx(org: FakeOrg, client: SalesforceClient) -> None:
    """A POST create that got a 5xx may have been applied: raised at once, ambiguous."""
    org.on("POST", f"{DATA}/sobjects/Lead/", UNAVAILABLE, CREATED)
    with pytest.raises(ServerError) as caught:
        await client.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_create_is_not_retried_after_a_reset(org: FakeOrg, client: SalesforceClient) -> None:
    """A connection reset after the POST was sent is ambiguous and not replayed."""
    org.on("POST", f"{DATA}/sobjects/Lead/", reset(), CREATED)
    with pytest.raises(ConnectionLostError) as caught:
        await client.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert caught.value.retriable
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_create_is_retried_on_row_lock_and_concurrency(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """UNABLE_TO_LOCK_ROW and the concurrent limit mean nothing was written: even a create retries."""
    org.on("POST", f"{DATA}/sobjects/Lead/", LOCK, CONCURRENT, CREATED)
    assert await client.create("Lead", {"LastName": "Doe"}) == LEAD
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 3


async def test_row_lock_exhaustion_raises_a_retriable_error(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A persistent row lock ends as RowLockError: retriable, not ambiguous."""
    org.on("PATCH", f"{DATA}/sobjects/Lead/{LEAD}", LOCK)
    with pytest.raises(RowLockError) as caught:
        await client.update("Lead", LEAD, {"Phone": "1"})
    assert caught.value.retriable
    assert not caught.value.ambiguous


async def test_concurrent_limit_is_retriable_not_throttle(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """The concurrent-request limit clears in seconds: retriable, without pausing consumption."""
    org.on("GET", f"{DATA}/limits", CONCURRENT)
    with pytest.raises(ConcurrentLimitError) as caught:
        await client.limits()
    assert caught.value.retriable
    assert not caught.value.throttle


async def test_daily_limit_is_never_retried(org: FakeOrg, client: SalesforceClient) -> None:
    """The daily API limit is raised at the first answer, flagged throttle, not retried."""
    org.on("GET", f"{DATA}/limits", DAILY, reply(200, {}))
    with pytest.raises(DailyLimitError) as caught:
        await client.limits()
    assert caught.value.throttle
    assert caught.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert len(org.calls("GET", f"{DATA}/limits")) == 1


async def test_upsert_is_retried_after_a_reset(org: FakeOrg, client: SalesforceClient) -> None:
    """An upsert by external id is idempotent, so an ambiguous reset is replayed."""
    path = f"{DATA}/sobjects/Lead/Ext__c/k"
    org.on(
        "PATCH",
        path,
        reset(),
        reply(200, {"id": LEAD, "success": True, "errors": [], "created": False}),
    )
    result = await client.upsert("Lead", "Ext__c", "k", {"LastName": "Doe"})
    assert result.id == LEAD
    assert len(org.calls("PATCH", path)) == 2


async def test_a_hang_times_out(org: FakeOrg, key_pair: KeyPair, no_sleep: NoSleep) -> None:
    """A server that never answers yields RequestTimeoutError after the configured deadline."""
    org.on("POST", f"{DATA}/sobjects/Lead/", hang())
    settings = settings_for(org.url, key_pair, timeout_s=0.3)
    async with SalesforceClient(settings, sleep=no_sleep) as sf:
        with pytest.raises(RequestTimeoutError) as caught:
            await sf.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_a_hung_query_is_retried_then_times_out(
    org: FakeOrg, key_pair: KeyPair, no_sleep: NoSleep
) -> None:
    """Idempotent reads are retried on timeout, up to max_attempts, and reads are never ambiguous."""
    org.on("GET", f"{DATA}/query", hang())
    settings = settings_for(org.url, key_pair, timeout_s=0.2, max_attempts=2)
    async with SalesforceClient(settings, sleep=no_sleep) as sf:
        with pytest.raises(RequestTimeoutError) as caught:
            await sf.query("SELECT Id FROM Lead")
    assert not caught.value.ambiguous
    assert len(org.calls("GET", f"{DATA}/query")) == 2


async def test_refused_connection_is_retried_even_for_create(
    key_pair: KeyPair, no_sleep: NoSleep
) -> None:
    """Nothing listening means nothing was sent: the error is not ambiguous."""
    settings = settings_for("http://127.0.0.1:9", key_pair, max_attempts=2)
    async with SalesforceClient(settings, sleep=no_sleep) as sf:
        with pytest.raises(ConnectionLostError) as caught:
            await sf.create("Lead", {"LastName": "Doe"})
    assert not caught.value.ambiguous
    assert len(no_sleep.delays) == 1


@given(st.integers(1, 40), st.floats(0, 5), st.floats(0, 60), st.integers(0, 2**32))
def test_backoff_is_full_jitter_within_bounds(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    """Each delay lies in [0, min(cap, base·2^(attempt-1))]."""
    delay = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** (attempt - 1))


@pytest.mark.parametrize(
    ("error", "idempotent", "retried"),
    [
        (RowLockError("locked"), False, True),
        (ConcurrentLimitError("busy"), False, True),
        (ServerError("503", ambiguous=True), False, False),
        (ServerError("503", ambiguous=True), True, True),
        (ServerError("503"), False, True),
        (ConnectionLostError("reset", ambiguous=True), False, False),
        (ConnectionLostError("refused"), False, True),
        (RequestTimeoutError("slow", ambiguous=True), True, True),
        (DailyLimitError("TotalRequests Limit exceeded."), True, False),
        (ValidationError("bad"), True, False),
    ],
)
def test_retry_matrix(error: SalesforceError, idempotent: bool, retried: bool) -> None:
    """should_retry: transient and unapplied, or transient and idempotent; never the daily limit."""
    assert should_retry(error, idempotent) is retried


async def test_in_flight_calls_are_bounded(
    org: FakeOrg, key_pair: KeyPair, no_sleep: NoSleep
) -> None:
    """No more than max_concurrency requests are ever in flight at once."""
    in_flight = 0
    peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # holds the request open; the assertion does not depend on it
        in_flight -= 1
        return json_response(200, {})

    org.on("GET", f"{DATA}/limits", slow)
    async with SalesforceClient(
        settings_for(org.url, key_pair, max_concurrency=4), sleep=no_sleep
    ) as sf:
        await asyncio.gather(*(sf.limits() for _ in range(40)))
    assert peak == 4


async def test_secrets_stay_out_of_logs(
    org: FakeOrg, client: SalesforceClient, key_pair: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries and re-authentication are logged without the access token or the key."""
    caplog.set_level(logging.DEBUG)
    org.on("GET", f"{DATA}/limits", UNAVAILABLE, reply(200, {}))
    await client.limits()
    org.expire_tokens()
    await client.limits()
    assert "retrying" in caplog.text
    assert "re-authenticating" in caplog.text
    assert "00D!token" not in caplog.text
    assert key_pair.private_pem.splitlines()[1] not in caplog.text
