"""The failure matrix: each call goes out once, and its failure is raised typed, with the flags that
tell the engine's retry policy what a retry would mean. Real HTTP failures, no retries here."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from salesforce.client import SalesforceClient
from salesforce.errors import (
    ConcurrentLimitError,
    ConnectionLostError,
    DailyLimitError,
    RequestTimeoutError,
    RowLockError,
    SalesforceError,
    ServerError,
)
from tests.salesforce.conftest import KeyPair, settings_for
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


@pytest.mark.parametrize("answer", [UNAVAILABLE, HTML_503])
async def test_a_503_on_a_read_is_raised_retriable_after_one_call(
    org: FakeOrg, client: SalesforceClient, answer: object
) -> None:
    """JSON or a CDN's HTML: a retriable ServerError, not ambiguous on a GET, one request."""
    org.on("GET", f"{DATA}/limits", answer, reply(200, {"ok": 1}))  # type: ignore[arg-type]
    with pytest.raises(ServerError) as caught:
        await client.limits()
    assert caught.value.retriable
    assert not caught.value.ambiguous
    assert len(org.calls("GET", f"{DATA}/limits")) == 1
    assert await client.limits() == {"ok": 1}


async def test_a_create_after_a_5xx_is_ambiguous(org: FakeOrg, client: SalesforceClient) -> None:
    """A POST create that got a 5xx may have been applied: raised at once, ambiguous."""
    org.on("POST", f"{DATA}/sobjects/Lead/", UNAVAILABLE, CREATED)
    with pytest.raises(ServerError) as caught:
        await client.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_a_create_after_a_reset_is_ambiguous(org: FakeOrg, client: SalesforceClient) -> None:
    """A connection reset after the POST was sent is ambiguous (and retriable: the engine
    retries it only for an idempotent step)."""
    org.on("POST", f"{DATA}/sobjects/Lead/", reset(), CREATED)
    with pytest.raises(ConnectionLostError) as caught:
        await client.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert caught.value.retriable
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_a_row_lock_is_retriable_and_not_ambiguous(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """UNABLE_TO_LOCK_ROW means nothing was written: retriable, even for a create."""
    org.on("POST", f"{DATA}/sobjects/Lead/", LOCK, CREATED)
    with pytest.raises(RowLockError) as caught:
        await client.create("Lead", {"LastName": "Doe"})
    assert caught.value.retriable
    assert not caught.value.ambiguous
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


@pytest.mark.parametrize(
    ("answer", "kind", "cause"),
    [
        (CONCURRENT, ConcurrentLimitError, "concurrent-request limit"),
        (DAILY, DailyLimitError, "daily API limit"),
    ],
)
async def test_the_org_limits_are_throttles_that_name_their_cause(
    org: FakeOrg,
    client: SalesforceClient,
    answer: object,
    kind: type[SalesforceError],
    cause: str,
) -> None:
    """Both limits pause the engine (throttle) rather than burn attempts, and say which."""
    org.on("GET", f"{DATA}/limits", answer, reply(200, {}))  # type: ignore[arg-type]
    with pytest.raises(kind) as caught:
        await client.limits()
    assert caught.value.throttle
    assert caught.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert cause in type(caught.value).pause_cause  # type: ignore[attr-defined]
    assert len(org.calls("GET", f"{DATA}/limits")) == 1


async def test_a_hang_times_out(org: FakeOrg, key_pair: KeyPair) -> None:
    """A server that never answers yields RequestTimeoutError after the configured deadline."""
    org.on("POST", f"{DATA}/sobjects/Lead/", hang())
    settings = settings_for(org.url, key_pair, timeout_s=0.3)
    async with SalesforceClient(settings) as sf:
        with pytest.raises(RequestTimeoutError) as caught:
            await sf.create("Lead", {"LastName": "Doe"})
    assert caught.value.ambiguous
    assert len(org.calls("POST", f"{DATA}/sobjects/Lead/")) == 1


async def test_a_hung_query_times_out_once_and_is_not_ambiguous(
    org: FakeOrg, key_pair: KeyPair
) -> None:
    """A read that times out is retriable and never ambiguous; it was sent once."""
    org.on("GET", f"{DATA}/query", hang())
    settings = settings_for(org.url, key_pair, timeout_s=0.2)
    async with SalesforceClient(settings) as sf:
        with pytest.raises(RequestTimeoutError) as caught:
            await sf.query("SELECT Id FROM Lead")
    assert caught.value.retriable
    assert not caught.value.ambiguous
    assert len(org.calls("GET", f"{DATA}/query")) == 1


async def test_a_refused_connection_is_not_ambiguous_even_for_a_create(key_pair: KeyPair) -> None:
    """Nothing listening means nothing was sent: retriable, not ambiguous."""
    settings = settings_for("http://127.0.0.1:9", key_pair)
    async with SalesforceClient(settings) as sf:
        with pytest.raises(ConnectionLostError) as caught:
            await sf.create("Lead", {"LastName": "Doe"})
    assert caught.value.retriable
    assert not caught.value.ambiguous


async def test_in_flight_calls_are_bounded(org: FakeOrg, key_pair: KeyPair) -> None:
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
    async with SalesforceClient(settings_for(org.url, key_pair, max_concurrency=4)) as sf:
        await asyncio.gather(*(sf.limits() for _ in range(40)))
    assert peak == 4


async def test_secrets_stay_out_of_logs(
    org: FakeOrg, client: SalesforceClient, key_pair: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    """Re-authentication is logged without the access token or the key."""
    caplog.set_level(logging.DEBUG)
    org.on("GET", f"{DATA}/limits", reply(200, {}), reply(200, {}))
    await client.limits()
    org.expire_tokens()
    await client.limits()
    assert "re-authenticating" in caplog.text
    assert "00D!token" not in caplog.text
    assert key_pair.private_pem.splitlines()[1] not in caplog.text
