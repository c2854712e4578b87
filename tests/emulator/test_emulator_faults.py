"""Fault injection, the daily and concurrency limits, and the /__emulator/ admin routes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from emulator_helpers import Api

from sfemulator import Emulator, EmulatorConfig, FaultRule
from tests.kafkatools import wait_for

LEAD = {"LastName": "Hopper", "Company": "Navy"}


async def test_http_error_json_then_recovery(api: Api) -> None:
    """A 503 SERVER_UNAVAILABLE fault with times=1 fails once, then the route works again."""
    api.emu.set_faults([FaultRule.server_unavailable(path="*/limits", times=1)])
    status, body, headers = await api.call("GET", "/limits")
    assert (status, body) == (
        503,
        [{"message": "Server too busy", "errorCode": "SERVER_UNAVAILABLE"}],
    )
    assert "Sforce-Limit-Info" in headers
    assert (await api.call("GET", "/limits"))[0] == 200


async def test_http_error_html_body_variant(api: Api) -> None:
    """The HTML variant answers 503 with a text/html page, as a CDN in front of the org does."""
    api.emu.set_faults([FaultRule.server_unavailable(html=True)])
    async with api.http.get(f"{api.base}/limits", headers=api.headers()) as resp:
        assert resp.status == 503
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "<html>" in await resp.text()


async def test_unable_to_lock_row_only_hits_the_matching_sobject(api: Api) -> None:
    """An sObject-scoped UNABLE_TO_LOCK_ROW fault affects Case writes, not Lead writes."""
    api.emu.set_faults([FaultRule("unable_to_lock_row", method="POST", sobject="Case")])
    status, body, _ = await api.call("POST", "/sobjects/Case/", json={"Subject": "x"})
    assert (status, body[0]["errorCode"]) == (400, "UNABLE_TO_LOCK_ROW")
    assert body[0]["message"].startswith("unable to obtain exclusive access to this record")
    assert (await api.call("POST", "/sobjects/Lead/", json=LEAD))[0] == 201
    assert api.emu.records("Case") == []
    assert api.emu.call_counts()["fault unable_to_lock_row"] == 1


async def statuses(seed: int, http: aiohttp.ClientSession) -> list[int]:
    rule = FaultRule.server_unavailable(probability=0.5)
    async with Emulator(EmulatorConfig(seed=seed, faults=(rule,))) as emu:
        api = Api(emu, http, emu.issue_access_token())
        return [(await api.call("GET", "/limits"))[0] for _ in range(24)]


async def test_probabilistic_faults_are_reproducible_by_seed(http: aiohttp.ClientSession) -> None:
    """The same seed gives the same fault sequence; the mix really is mixed."""
    first, again, other = await statuses(5, http), await statuses(5, http), await statuses(6, http)
    assert first == again
    assert {200, 503} == set(first)
    assert first != other


async def test_connection_reset(api: Api) -> None:
    """connection_reset drops the TCP connection with a reset; the client sees an OS error."""
    api.emu.set_faults([FaultRule("connection_reset", path="*/query*")])
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.query("SELECT Id FROM Lead")


async def test_fail_after_commit_applies_the_write_but_loses_the_answer(api: Api) -> None:
    """fail_after_commit saves the record, then drops the connection before responding."""
    api.emu.set_faults([FaultRule("fail_after_commit", method="POST", times=1)])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "/sobjects/Lead/", json=LEAD)
    assert [r["LastName"] for r in api.emu.records("Lead")] == ["Hopper"]


async def test_latency_is_added(api: Api) -> None:
    """A latency rule delays the matching response by at least its milliseconds."""
    api.emu.set_faults([FaultRule.latency(80, path="*/limits")])
    started = time.perf_counter()
    assert (await api.call("GET", "/limits"))[0] == 200
    assert time.perf_counter() - started >= 0.08


async def test_hung_requests_count_toward_the_concurrency_limit(
    http: aiohttp.ClientSession,
) -> None:
    """Once requests have run >= 20 s, a new one beyond the limit is REQUEST_LIMIT_EXCEEDED."""
    config = EmulatorConfig(concurrency_limit=1, faults=(FaultRule("hang", path="*/limits"),))
    emu = await Emulator(config).start()
    try:
        api = Api(emu, http, emu.issue_access_token())
        hung = asyncio.ensure_future(api.call("GET", "/limits"))
        await asyncio.wait_for(emu.wait_for_in_flight(1), timeout=5)
        assert (await api.call("GET", "/sobjects/Lead/describe"))[0] == 200  # not long yet
        emu.advance_clock(21)
        status, body, _ = await api.call("GET", "/sobjects/Lead/describe")
        assert (status, body) == (
            403,
            [
                {
                    "message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded",
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                }
            ],
        )
    finally:
        await emu.stop()
    with pytest.raises(aiohttp.ClientError):
        await hung


async def test_daily_limit_is_rolling(http: aiohttp.ClientSession) -> None:
    """At the daily limit calls get 403 TotalRequests; 24 hours later the budget is back."""
    async with Emulator(EmulatorConfig(daily_api_limit=3)) as emu:
        api = Api(emu, http, emu.issue_access_token())
        for used in (1, 2, 3):
            assert (await api.call("GET", "/limits"))[2]["Sforce-Limit-Info"] == (
                f"api-usage={used}/3"
            )
        status, body, headers = await api.call("GET", "/limits")
        assert (status, body) == (
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        )
        assert headers["Sforce-Limit-Info"] == "api-usage=3/3"
        emu.advance_clock(24 * 3600 + 61)
        api.token = emu.issue_access_token()  # the old session timed out meanwhile
        assert (await api.call("GET", "/limits"))[2]["Sforce-Limit-Info"] == "api-usage=1/3"


async def test_request_limit_fault_and_token_endpoint_faults(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """request_limit_exceeded fakes the daily-limit 403; faults also reach the token endpoint."""
    api = Api(emu, http, emu.issue_access_token())
    emu.set_faults(
        [
            FaultRule("request_limit_exceeded", times=1),
            FaultRule.server_unavailable(path="/services/oauth2/token"),
        ]
    )
    status, body, _ = await api.call("GET", "/limits")
    assert (status, body[0]["message"]) == (403, "TotalRequests Limit exceeded.")
    creds = emu.credentials
    async with http.post(
        f"{emu.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
    ) as resp:
        assert resp.status == 503


async def test_admin_routes_drive_the_emulator_and_are_not_counted(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """PUT/GET faults, GET state, POST clock/expire-tokens/reset work over HTTP, uncounted."""
    admin = f"{emu.url}/__emulator"
    api = Api(emu, http, emu.issue_access_token())
    await api.create("Lead", LEAD)
    rule = {
        "action": "http_error",
        "path": "*/limits",
        "status": 500,
        "error_code": "UNKNOWN_EXCEPTION",
        "message": "boom",
        "times": 1,
    }
    async with http.put(f"{admin}/faults", json=[rule]) as resp:
        assert resp.status == 200
    async with http.get(f"{admin}/faults") as resp:
        assert (await resp.json())[0]["error_code"] == "UNKNOWN_EXCEPTION"
    assert (await api.call("GET", "/limits"))[0] == 500
    async with http.get(f"{admin}/state", params={"sobject": "Lead"}) as resp:
        state = await resp.json()
    assert state["api_usage"] == {"used": 2, "limit": 15000}
    assert [r["LastName"] for r in state["records"]["Lead"]] == ["Hopper"]
    assert state["call_counts"]["POST /sobjects/{type}"] == 1
    async with http.put(f"{admin}/faults", json=[{"action": "explode"}]) as resp:
        assert resp.status == 400
    async with http.post(f"{admin}/expire-tokens") as resp:
        assert resp.status == 200
    assert (await api.call("GET", "/limits"))[0] == 401
    async with http.post(f"{admin}/reset") as resp:
        assert resp.status == 200
    assert emu.records("Lead") == []
    assert emu.call_counts()["api_calls"] == 0
    async with http.post(f"{admin}/clock", json={"advance_s": 60}) as resp:
        assert (await resp.json())["now"] > time.time() + 59


async def test_lock_fault_on_collections_fails_only_some_records(api: Api) -> None:
    """With records=N, a Collections call answers 200 and N records carry UNABLE_TO_LOCK_ROW."""
    api.emu.set_faults([FaultRule("unable_to_lock_row", path="*/composite/sobjects", records=2)])
    records = [{"attributes": {"type": "Account"}, "Name": f"A{n}"} for n in range(5)]
    status, body, _ = await api.call("POST", "/composite/sobjects", json={"records": records})
    assert status == 200
    failed = [r for r in body if not r["success"]]
    assert len(failed) == 2
    assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}
    assert len(api.emu.records("Account")) == 3


async def test_injected_errors_speak_each_routes_dialect(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """On the token endpoint an http_error is an OAuth error body; on SOAP it is a SOAP fault."""
    emu.set_faults(
        [
            FaultRule(
                "http_error",
                path="/services/oauth2/token",
                status=400,
                error_code="invalid_grant",
                message="user hasn't approved this consumer",
            ),
            FaultRule("request_limit_exceeded", path="/services/Soap/*"),
        ]
    )
    async with http.post(
        f"{emu.url}/services/oauth2/token", data={"grant_type": "client_credentials"}
    ) as resp:
        assert (resp.status, await resp.json()) == (
            400,
            {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
        )
    envelope = (
        '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com"><e:Header><SessionHeader><sessionId>'
        f"{emu.issue_access_token()}</sessionId></SessionHeader></e:Header><e:Body>"
        "<convertLead/></e:Body></e:Envelope>"
    )
    async with http.post(f"{emu.url}/services/Soap/u/{emu.api_version}", data=envelope) as resp:
        text = await resp.text()
    assert resp.status == 500
    assert "<faultcode>sf:REQUEST_LIMIT_EXCEEDED</faultcode>" in text


async def fault_counts(emu: Emulator, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(f"{emu.url}/__emulator/fault-counts") as resp:
        assert resp.status == 200
        counts: dict[str, Any] = await resp.json()
        return counts


async def test_fault_counts_say_what_fired_by_kind_and_by_rule(
    api: Api, http: aiohttp.ClientSession
) -> None:
    """GET fault-counts: totals by kind since the start (across rule changes), per rule since
    the rules were set, token expiries asked for through the admin route."""
    api.emu.set_faults([FaultRule.server_unavailable(path="*/limits", times=2)])
    statuses = [(await api.call("GET", "/limits"))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    api.emu.set_faults([FaultRule("fail_after_commit", method="POST", times=1)])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "/sobjects/Lead/", json=LEAD)
    async with http.post(f"{api.emu.url}/__emulator/expire-tokens") as resp:
        assert resp.status == 200
    counts = await fault_counts(api.emu, http)
    assert counts["fired"] == {"http_error": 2, "fail_after_commit": 1, "expire_tokens": 1}
    assert [(r["rule"]["action"], r["fired"]) for r in counts["rules"]] == [
        ("fail_after_commit", 1)
    ]
    assert counts["withheld"] == 0


async def test_fail_after_commit_can_hold_the_answer_before_losing_it(
    api: Api, http: aiohttp.ClientSession
) -> None:
    """With latency_ms the write is saved at once, its answer is withheld (and counted as
    withheld) for that long or until POST release, and then the connection drops all the same."""
    api.emu.set_faults([FaultRule("fail_after_commit", sobject="Lead", latency_ms=60_000)])
    call = asyncio.ensure_future(api.call("POST", "/sobjects/Lead/", json=LEAD))

    async def held() -> bool:
        return bool((await fault_counts(api.emu, http))["withheld"] == 1)

    await wait_for(held, what="the answer to be withheld")
    assert [r["LastName"] for r in api.emu.records("Lead")] == ["Hopper"]
    assert not call.done()
    async with http.post(f"{api.emu.url}/__emulator/release") as resp:
        assert await resp.json() == {"released": 1}
    with pytest.raises(aiohttp.ClientConnectionError):
        await call
    assert (await fault_counts(api.emu, http))["withheld"] == 0


async def test_collections_writes_match_rules_by_their_records_type(api: Api) -> None:
    """A rule scoped to Lead hits an sObject Collections create of leads, not one of cases."""
    api.emu.set_faults([FaultRule.server_unavailable(sobject="Lead", method="POST")])
    cases = [{"attributes": {"type": "Case"}, "Subject": "s"}]
    leads = [{"attributes": {"type": "Lead"}, **LEAD}]
    assert (await api.call("POST", "/composite/sobjects", json={"records": cases}))[0] == 200
    assert (await api.call("POST", "/composite/sobjects", json={"records": leads}))[0] == 503
    assert api.emu.records("Lead") == []
