"""The Zendesk client against the emulator over real HTTP: records, auth, documented errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from localkafka.broker import free_port
from zdemulator import EMAIL, ZendeskEmulator
from zendesk.client import Organization, User, ZendeskClient
from zendesk.errors import (
    AuthenticationFailed,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
)
from zendesk.settings import ApiToken, OAuthToken, ZendeskSettings

PEOPLE = [
    {
        "id": 90001,
        "name": "Nora Quist",
        "email": "nora@brightlane.example",
        "phone": "+44 20 7946 0101",
    },
    {"id": 90002, "name": "Jane Doe", "email": "jane@acme.example", "organization_id": 70001},
]


@pytest.fixture
async def zd() -> AsyncIterator[ZendeskEmulator]:
    async with ZendeskEmulator(
        users=PEOPLE, organizations=[{"id": 70001, "name": "Acme"}]
    ) as emulator:
        yield emulator


@pytest.fixture
async def client(zd: ZendeskEmulator) -> AsyncIterator[ZendeskClient]:
    client = ZendeskClient(zd.settings())
    yield client
    await client.close()


async def test_show_many_users_returns_those_that_exist(
    client: ZendeskClient, zd: ZendeskEmulator
) -> None:
    """Ids that match nobody are simply absent; the fields come typed, ids as strings."""
    users = await client.show_many_users(["90001", "90002", "12345"])
    assert users == {
        "90001": User("90001", "Nora Quist", "nora@brightlane.example", "+44 20 7946 0101"),
        "90002": User("90002", "Jane Doe", "jane@acme.example", None, "70001"),
    }
    assert zd.calls == [("users", ["90001", "90002", "12345"])]


async def test_show_many_organizations(client: ZendeskClient) -> None:
    assert await client.show_many_organizations(["70001", "1"]) == {
        "70001": Organization("70001", "Acme")
    }


async def test_oauth_tokens_work_too(zd: ZendeskEmulator) -> None:
    """An OAuth access token is sent as Bearer and accepted."""
    client = ZendeskClient(zd.settings(oauth=True))
    try:
        assert set(await client.show_many_users(["90001"])) == {"90001"}
    finally:
        await client.close()


@pytest.mark.parametrize(
    "auth",
    [ApiToken(EMAIL, SecretStr("wrong")), ApiToken("other@example.com", SecretStr("emulator-api-token")),
     OAuthToken(SecretStr("wrong"))],
)  # fmt: skip
async def test_wrong_credentials_are_a_401_not_retriable(
    zd: ZendeskEmulator, auth: ApiToken | OAuthToken
) -> None:
    """Zendesk's 401 body reads "Couldn't authenticate you"; retrying will not help."""
    client = ZendeskClient(ZendeskSettings(base_url=zd.url, auth=auth))
    try:
        with pytest.raises(AuthenticationFailed, match="Couldn't authenticate you") as failed:
            await client.show_many_users(["90001"])
    finally:
        await client.close()
    assert not failed.value.retriable
    assert "wrong" not in str(failed.value)


@pytest.mark.parametrize(
    ("status", "error", "retriable", "text"),
    [
        (403, Forbidden, False, "Forbidden: You do not have access"),
        (404, NotFound, False, "RecordNotFound: Not found"),
        (500, ServerError, True, "Internal Server Error"),
        (503, ServerError, True, "Service Unavailable"),
    ],
)
async def test_documented_errors_map_to_their_classes(
    client: ZendeskClient, zd: ZendeskEmulator, status: int, error: type, retriable: bool, text: str
) -> None:
    zd.fail_next(status)
    with pytest.raises(error, match=text) as failed:
        await client.show_many_users(["90001"])
    assert failed.value.retriable is retriable
    assert failed.value.status == status


async def test_a_429_carries_retry_after(client: ZendeskClient, zd: ZendeskEmulator) -> None:
    """Rate limited: retriable, and the wait Zendesk asked for in Retry-After."""
    zd.fail_next(429, retry_after_s=7)
    with pytest.raises(RateLimited) as limited:
        await client.show_many_users(["90001"])
    assert (limited.value.retriable, limited.value.retry_after_s) == (True, 7.0)
    assert "per minute exceeded" in str(limited.value)


async def test_the_per_minute_limit_answers_429(zd: ZendeskEmulator, client: ZendeskClient) -> None:
    """Past the account's requests per minute, the emulator answers 429 until the minute ends."""
    zd.rate_limit = 2
    await client.show_many_users(["90001"])
    await client.show_many_users(["90001"])
    with pytest.raises(RateLimited) as limited:
        await client.show_many_users(["90001"])
    assert 0 < limited.value.retry_after_s <= 60


async def test_no_answer_in_time_is_a_transport_error(zd: ZendeskEmulator) -> None:
    zd.latency_s = 1.0
    client = ZendeskClient(zd.settings(timeout_s=0.1))
    try:
        with pytest.raises(TransportError, match="no answer") as failed:
            await client.show_many_users(["90001"])
    finally:
        await client.close()
    assert failed.value.retriable


async def test_nobody_listening_is_a_transport_error() -> None:
    settings = ZendeskSettings(
        base_url=f"http://127.0.0.1:{free_port()}", auth=OAuthToken(SecretStr("t"))
    )
    client = ZendeskClient(settings)
    try:
        with pytest.raises(TransportError):
            await client.show_many_users(["1"])
    finally:
        await client.close()


async def test_more_than_100_ids_is_refused_before_sending(
    client: ZendeskClient, zd: ZendeskEmulator
) -> None:
    """The documented limit is 100 ids a call; the client never sends more."""
    with pytest.raises(ValueError, match="1 to 100"):
        await client.show_many_users([str(i) for i in range(101)])
    assert zd.calls == []
