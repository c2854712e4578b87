"""The client against the emulator: every error class, expiry, limits, faults and TLS, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.catalogue.soql import quote_list
from pipeline.ports import LeadConversion, RecordWrite
from salesforce.client import SalesforceClient
from salesforce.errors import (
    ConcurrentLimitError,
    ConnectionLostError,
    ConvertedLeadError,
    DailyLimitError,
    DuplicateError,
    InvalidClientError,
    InvalidFieldError,
    InvalidGrantError,
    MalformedIdError,
    NotFoundError,
    QueryError,
    RequestTimeoutError,
    RowLockError,
    ServerError,
    TlsError,
    ValidationError,
)
from salesforce.indicator import build_indicator
from salesforce.settings import AuthMethod, ConnectionSettings
from sfemulator import Emulator, EmulatorConfig, FaultRule

TOKEN_ROUTE = "POST /services/oauth2/token"
LEAD = {"LastName": "Doe", "Company": "Acme"}


def emulator_settings(emu: Emulator, **overrides: Any) -> ConnectionSettings:
    creds = emu.credentials
    values: dict[str, Any] = {
        "name": "emulator",
        "login_url": emu.url,
        "api_version": emu.api_version,
        "client_id": creds.client_id,
        "username": creds.username,
        "private_key": SecretStr(creds.private_key_pem),
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return ConnectionSettings.model_validate(values)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(port=0, seed=0)) as emulator:
        yield emulator


@pytest.fixture
async def sf(emu: Emulator) -> AsyncIterator[SalesforceClient]:
    async with SalesforceClient(emulator_settings(emu)) as client:
        yield client


async def test_crud_round_trip(emu: Emulator, sf: SalesforceClient) -> None:
    """create, get, update, upsert, query, delete behave as on a real org."""
    lead_id = await sf.create("Lead", {**LEAD, "Email": "doe@example.com"})
    await sf.update("Lead", lead_id, {"Phone": "+33 1 02 03 04 05"})
    record = await sf.get("Lead", lead_id, ["Id", "Phone", "Status"])
    assert record == {"Id": lead_id, "Phone": "+33 1 02 03 04 05", "Status": "Open - Not Contacted"}
    first = await sf.upsert("Lead", "Actionflows_Key__c", "evt-1", LEAD)
    again = await sf.upsert("Lead", "Actionflows_Key__c", "evt-1", {"LastName": "Doe2"})
    assert (first.created, again.created, again.id) == (True, False, first.id)
    rows = await sf.query("SELECT Id FROM Lead WHERE Email = 'doe@example.com'")
    assert rows == [{"Id": lead_id}]
    await sf.delete("Lead", lead_id)
    await sf.delete("Lead", lead_id)  # already in the recycle bin: still done
    assert [r["Id"] for r in emu.records("Lead")] == [first.id]


async def test_query_pages_past_2000(emu: Emulator, sf: SalesforceClient) -> None:
    """A 2,500-row result arrives whole through nextRecordsUrl."""
    for n in range(2500):
        emu.insert("Account", {"Name": f"acct {n}"})
    rows = await sf.query("SELECT Id, Name FROM Account")
    assert len(rows) == 2500
    assert any(route.startswith("GET /query/") for route in emu.call_counts()), emu.call_counts()


async def test_batches_and_conversion(emu: Emulator, sf: SalesforceClient) -> None:
    """Collections writes report per record; convertLead over SOAP returns the new ids."""
    outcomes = await sf.create_many(
        [RecordWrite("Lead", {**LEAD, "LastName": f"n{i}"}) for i in range(250)]
        + [RecordWrite("Lead", {})]
    )
    assert sum(o.error is None for o in outcomes) == 250
    assert isinstance(outcomes[-1].error, ValidationError)
    upserted = await sf.upsert_many(
        "Contact",
        "Actionflows_Key__c",
        [{"Actionflows_Key__c": f"c{i}", "LastName": "x"} for i in range(3)],
    )
    assert all(o.created for o in upserted)
    updated = await sf.update_many([RecordWrite("Lead", {"Phone": "1"}, id=outcomes[0].id)])
    assert updated[0].error is None
    result = await sf.convert_lead(LeadConversion(str(outcomes[0].id)))
    assert None not in (result.account_id, result.contact_id, result.opportunity_id)
    with pytest.raises(ConvertedLeadError):
        await sf.convert_lead(LeadConversion(str(outcomes[0].id)))


@pytest.mark.parametrize(
    ("call", "expected", "code"),
    [
        (
            lambda sf: sf.create("Lead", {"Company": "Acme"}),
            ValidationError,
            "REQUIRED_FIELD_MISSING",
        ),
        (
            lambda sf: sf.create("Lead", {**LEAD, "LastName": "x" * 81}),
            ValidationError,
            "STRING_TOO_LONG",
        ),
        (lambda sf: sf.create("Lead", {**LEAD, "Nope__c": 1}), InvalidFieldError, "INVALID_FIELD"),
        (lambda sf: sf.get("Lead", "00Q000000000000", ["Id"]), NotFoundError, "NOT_FOUND"),
        (
            lambda sf: sf.update("Lead", "001000000000000AAA", {"Phone": "1"}),
            MalformedIdError,
            "MALFORMED_ID",
        ),
        (lambda sf: sf.query("SELEC Id FROM Lead"), QueryError, "MALFORMED_QUERY"),
        (lambda sf: sf.query("SELECT Nope FROM Lead"), InvalidFieldError, "INVALID_FIELD"),
    ],
)
async def test_error_classes(
    sf: SalesforceClient, call: Callable[[SalesforceClient], Any], expected: type, code: str
) -> None:
    """Each emulated Salesforce error arrives as its class, not retried."""
    with pytest.raises(expected) as caught:
        await call(sf)
    assert caught.value.error_code == code
    assert not caught.value.retriable


async def test_duplicates_and_deleted(emu: Emulator, sf: SalesforceClient) -> None:
    """Duplicate rules give DuplicateError with the match; PATCH on a deleted record is NotFound."""
    first = await sf.create("Lead", {**LEAD, "Email": "dup@example.com"})
    with pytest.raises(DuplicateError) as caught:
        await sf.create("Lead", {**LEAD, "Email": "dup@example.com"})
    assert first in caught.value.matching_ids
    await sf.delete("Lead", first)
    with pytest.raises(NotFoundError) as deleted:
        await sf.update("Lead", first, {"Phone": "1"})
    assert deleted.value.error_code == "ENTITY_IS_DELETED"


async def test_auth_errors(emu: Emulator) -> None:
    """A wrong consumer key and a wrong username are refused at the token endpoint."""
    async with SalesforceClient(emulator_settings(emu, client_id="3MVGunknown")) as sf:
        with pytest.raises((InvalidClientError, InvalidGrantError)):
            await sf.connect()
    async with SalesforceClient(emulator_settings(emu, username="nobody@example.com")) as sf:
        with pytest.raises(InvalidGrantError):
            await sf.connect()


async def test_unapproved_jwt_user() -> None:
    """Without pre-authorisation the JWT flow fails with Salesforce's own reason and a hint."""
    async with (
        Emulator(EmulatorConfig(jwt_preauthorized=False)) as emu,
        SalesforceClient(emulator_settings(emu)) as sf,
    ):
        indicator = await build_indicator(sf, ["x"])
    assert not indicator.connected
    assert "hasn't approved" in (indicator.problem or "")
    assert indicator.hint


async def test_other_flows(emu: Emulator) -> None:
    """Refresh-token and password flows log in against the emulator too."""
    creds = emu.credentials
    refresh = emulator_settings(
        emu,
        auth=AuthMethod.REFRESH_TOKEN,
        private_key=None,
        refresh_token=SecretStr(emu.mint_refresh_token()),
        client_secret=SecretStr(creds.client_secret),
    )
    password = emulator_settings(
        emu,
        auth=AuthMethod.PASSWORD,
        private_key=None,
        client_secret=SecretStr(creds.client_secret),
        password=SecretStr(creds.password),
    )
    for settings in (refresh, password):
        async with SalesforceClient(settings) as sf:
            assert (await sf.identity())["user_id"] == creds.user_id


async def test_fifty_concurrent_calls_after_expiry_reauthenticate_once(
    emu: Emulator, sf: SalesforceClient
) -> None:
    """50 concurrent calls after expire_tokens() cause exactly one new token request."""
    await sf.limits()
    assert emu.call_counts()[TOKEN_ROUTE] == 1
    emu.expire_tokens()
    await asyncio.gather(*(sf.query("SELECT Id FROM Lead LIMIT 1") for _ in range(50)))
    assert emu.call_counts()[TOKEN_ROUTE] == 2


async def test_daily_limit_throttles_without_retry() -> None:
    """At the daily limit the client raises DailyLimitError at once: throttle, one request."""
    async with (
        Emulator(EmulatorConfig(daily_api_limit=3)) as emu,
        SalesforceClient(emulator_settings(emu)) as sf,
    ):
        for _ in range(3):
            await sf.limits()
        before = emu.call_counts().get("GET /limits", 0)
        with pytest.raises(DailyLimitError) as caught:
            await sf.limits()
        assert caught.value.throttle
        assert emu.call_counts().get("GET /limits", 0) - before <= 1
        assert sf.api_usage is not None
        assert sf.api_usage.api is not None
        assert sf.api_usage.api.limit == 3


@pytest.mark.parametrize("html", [False, True])
async def test_a_503_is_raised_once_ambiguous_only_for_a_create(
    emu: Emulator, sf: SalesforceClient, html: bool
) -> None:
    """A 503 (JSON or a CDN's HTML) fails a query retriable and not ambiguous, a create
    ambiguous; each after one request. The next call (the engine's retry) goes through."""
    emu.set_faults([FaultRule.server_unavailable(html=html, times=1, method="GET")])
    with pytest.raises(ServerError) as read_failure:
        await sf.query("SELECT Id FROM Lead")
    assert read_failure.value.retriable
    assert not read_failure.value.ambiguous
    assert await sf.query("SELECT Id FROM Lead") == []
    emu.set_faults(
        [FaultRule.server_unavailable(html=html, method="POST", path="*/sobjects/Lead*")]
    )
    with pytest.raises(ServerError) as caught:
        await sf.create("Lead", LEAD)
    assert caught.value.ambiguous
    assert emu.records("Lead") == []
    assert emu.call_counts()["fault http_error"] == 2


async def test_a_row_lock_fails_a_create_retriable_and_unapplied(
    emu: Emulator, sf: SalesforceClient
) -> None:
    """UNABLE_TO_LOCK_ROW: nothing written, retriable, not ambiguous; the next try creates."""
    emu.set_faults(
        [FaultRule("unable_to_lock_row", method="POST", path="*/sobjects/Lead*", times=1)]
    )
    with pytest.raises(RowLockError) as caught:
        await sf.create("Lead", LEAD)
    assert caught.value.retriable
    assert not caught.value.ambiguous
    assert emu.records("Lead") == []
    await sf.create("Lead", LEAD)
    assert len(emu.records("Lead")) == 1


async def test_the_concurrent_limit_is_a_throttle(emu: Emulator, sf: SalesforceClient) -> None:
    """The concurrent-request limit pauses the engine (throttle) instead of using attempts."""
    emu.set_faults(
        [
            FaultRule(
                "request_limit_exceeded",
                times=1,
                method="GET",
                message="ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            )
        ]
    )
    with pytest.raises(ConcurrentLimitError) as caught:
        await sf.query("SELECT Id FROM Lead")
    assert caught.value.throttle
    assert await sf.query("SELECT Id FROM Lead") == []


async def test_a_connection_reset_is_ambiguous_after_a_write(
    emu: Emulator, sf: SalesforceClient
) -> None:
    """A reset mid-write is ambiguous (an upsert may retry it, a create may not)."""
    emu.set_faults([FaultRule("connection_reset", method="PATCH", times=1)])
    with pytest.raises(ConnectionLostError) as upsert_failure:
        await sf.upsert("Lead", "Actionflows_Key__c", "k", LEAD)
    assert upsert_failure.value.ambiguous
    await sf.upsert("Lead", "Actionflows_Key__c", "k", LEAD)
    emu.set_faults([FaultRule("connection_reset", method="POST", path="*/sobjects/Lead*")])
    with pytest.raises(ConnectionLostError) as caught:
        await sf.create("Lead", LEAD)
    assert caught.value.ambiguous
    assert len(emu.records("Lead")) == 1


async def test_lost_answer_after_commit(emu: Emulator, sf: SalesforceClient) -> None:
    """A lost answer after commit is ambiguous; replaying an upsert finds its own record."""
    emu.set_faults(
        [FaultRule("fail_after_commit", method="POST", path="*/sobjects/Lead*", times=1)]
    )
    with pytest.raises(ConnectionLostError) as caught:
        await sf.create("Lead", LEAD)
    assert caught.value.ambiguous
    assert len(emu.records("Lead")) == 1
    emu.set_faults([FaultRule("fail_after_commit", method="PATCH", times=1)])
    with pytest.raises(ConnectionLostError):
        await sf.upsert("Lead", "Actionflows_Key__c", "once", LEAD)
    result = await sf.upsert("Lead", "Actionflows_Key__c", "once", LEAD)
    assert len(emu.records("Lead")) == 2
    assert result.created is False


async def test_hang_times_out(emu: Emulator) -> None:
    """A hung request ends as RequestTimeoutError within the configured deadline."""
    emu.set_faults([FaultRule("hang", method="POST", path="*/sobjects/Lead*")])
    async with SalesforceClient(emulator_settings(emu, timeout_s=0.5)) as sf:
        await sf.connect()
        with pytest.raises(RequestTimeoutError) as caught:
            await sf.create("Lead", LEAD)
    assert caught.value.ambiguous


async def test_tls(tmp_path: Path) -> None:
    """Against a TLS emulator the client trusts a configured CA file and refuses otherwise."""
    async with Emulator(EmulatorConfig(tls=True)) as emu:
        assert emu.url.startswith("https://")
        assert emu.tls_certificate_pem is not None
        ca_file = tmp_path / "emulator-ca.pem"
        ca_file.write_text(emu.tls_certificate_pem)
        async with SalesforceClient(emulator_settings(emu, ca_file=ca_file)) as sf:
            assert await sf.query("SELECT Id FROM Lead") == []
        async with SalesforceClient(emulator_settings(emu)) as sf:
            with pytest.raises(TlsError):
                await sf.connect()


async def test_indicator_against_the_emulator(emu: Emulator, sf: SalesforceClient) -> None:
    """The indicator shows the emulated org: ids, username, environment, usage, actions."""
    indicator = await build_indicator(sf, requirements={"delete lead": ("Lead", "deletable")})
    assert indicator.connected
    assert indicator.org_id == emu.credentials.org_id
    assert indicator.username == emu.credentials.username
    assert indicator.environment in ("sandbox", "production")
    assert indicator.latest_api_version == emu.api_version
    assert indicator.api_usage is not None
    assert [a.available for a in indicator.actions] == [True]


async def test_introspect_and_revoke(emu: Emulator) -> None:
    """Introspection shows the token active with its scope and expiry; after revoke, a call logs in again."""
    settings = emulator_settings(emu, client_secret=SecretStr(emu.credentials.client_secret))
    async with SalesforceClient(settings) as sf:
        info = await sf.introspect()
        assert info["active"] is True
        assert "api" in info["scope"].split()
        assert info["exp"] > info["iat"]
        await sf.revoke()
        assert sf.token is None
        await sf.limits()
    assert emu.call_counts()[TOKEN_ROUTE] == 2


async def test_delete_many_against_the_emulator(emu: Emulator, sf: SalesforceClient) -> None:
    """delete_many removes records of mixed types in one call."""
    lead = await sf.create("Lead", LEAD)
    case = await sf.create("Case", {"Subject": "s"})
    outcomes = await sf.delete_many([lead, case])
    assert [o.error for o in outcomes] == [None, None]
    assert emu.records("Lead") == []
    assert emu.records("Case") == []


async def test_old_api_version_upsert_204(emu: Emulator) -> None:
    """On an API version before 46.0 an upsert update may answer 204; the id is still returned."""
    async with SalesforceClient(emulator_settings(emu, api_version="45.0")) as sf:
        created = await sf.upsert("Lead", "Actionflows_Key__c", "old-1", LEAD)
        updated = await sf.upsert("Lead", "Actionflows_Key__c", "old-1", {"Phone": "1"})
    assert updated.id == created.id
    assert updated.created is False


async def test_very_long_soql_goes_through_composite(emu: Emulator, sf: SalesforceClient) -> None:
    """A query whose URL would pass 8 KB is sent in a Composite body and still pages normally."""
    wanted = [f"wanted {n}" for n in range(3)]
    for name in wanted:
        await sf.create("Account", {"Name": name})
    names = wanted + [f"no such account {n}" for n in range(600)]  # lengthens the query
    soql = f"SELECT Name FROM Account WHERE Name IN {quote_list(names)}"
    rows = await sf.query(soql)
    assert sorted(r["Name"] for r in rows) == wanted
    assert emu.call_counts().get("POST /composite") == 1


async def test_long_soql_errors_keep_their_class(emu: Emulator, sf: SalesforceClient) -> None:
    """An error inside the Composite subrequest is raised as its own class."""
    names = quote_list([f"n{n}" for n in range(1500)])
    soql = f"SELECT Nope FROM Account WHERE Name IN {names}"
    with pytest.raises(InvalidFieldError):
        await sf.query(soql)
