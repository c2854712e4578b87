"""OAuth flows: the token requests each grant sends, token parsing, and single-flight re-auth."""

from __future__ import annotations

import asyncio
import base64

import jwt
import pytest
from pydantic import SecretStr

from salesforce.auth import (
    ClientCredentialsFlow,
    JwtBearerFlow,
    PasswordFlow,
    RefreshTokenFlow,
    Token,
    parse_token_response,
)
from salesforce.client import SalesforceClient
from salesforce.errors import (
    AuthError,
    InvalidClientError,
    InvalidGrantError,
    ServerError,
    SessionExpiredError,
    SessionNotValidForApiError,
)
from salesforce.settings import AuthMethod
from tests.salesforce.conftest import KeyPair, settings_for
from tests.salesforce.fake_org import DATA, FakeOrg, reply

LIMITS = f"{DATA}/limits"


def test_jwt_assertion_has_the_documented_claims(key_pair: KeyPair) -> None:
    """RS256 with iss = consumer key, sub = username, aud = login, exp = now + lifetime in seconds."""
    flow = JwtBearerFlow(
        "https://login.salesforce.com/services/oauth2/token",
        "3MVGkey",
        "svc@example.com",
        SecretStr(key_pair.private_pem),
        "https://login.salesforce.com",
        180,
    )
    request = flow.token_request(now=1_700_000_000.5)
    assert request.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header = jwt.get_unverified_header(request.form["assertion"])
    claims = jwt.decode(
        request.form["assertion"],
        key_pair.public_pem,
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
        options={"verify_exp": False},
    )
    assert header["alg"] == "RS256"
    assert claims == {
        "iss": "3MVGkey",
        "sub": "svc@example.com",
        "aud": "https://login.salesforce.com",
        "exp": 1_700_000_180,
    }


def test_sandbox_login_urls_get_the_test_audience(key_pair: KeyPair) -> None:
    """test.salesforce.com and *.sandbox.my.salesforce.com sign for https://test.salesforce.com."""
    for url in ("https://test.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"):
        assert settings_for(url, key_pair).jwt_audience == "https://test.salesforce.com"
    assert settings_for("https://acme.my.salesforce.com", key_pair).jwt_audience == (
        "https://login.salesforce.com"
    )


def test_a_bad_private_key_fails_without_echoing_it() -> None:
    """A key that cannot sign gives an AuthError that does not contain the key text."""
    flow = JwtBearerFlow("u", "c", "s", SecretStr("-----not a key SECRETSTUFF-----"), "a")
    with pytest.raises(AuthError) as caught:
        flow.token_request(now=0)
    assert "SECRETSTUFF" not in str(caught.value)


def test_client_credentials_use_basic_auth() -> None:
    """Client credentials send grant_type only in the body and the pair as HTTP Basic."""
    flow = ClientCredentialsFlow("https://acme.my.salesforce.com/t", "id", SecretStr("s3cret"))
    request = flow.token_request(now=0)
    assert request.form == {"grant_type": "client_credentials"}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"id:s3cret").decode()
    assert "s3cret" not in repr(request)
    assert "s3cret" not in repr(flow)


def test_refresh_token_flow_follows_rotation() -> None:
    """A new refresh_token in a response replaces the stored one for the next request."""
    flow = RefreshTokenFlow("u", "id", SecretStr("old"))
    assert flow.token_request(now=0).form["refresh_token"] == "old"
    token = parse_token_response(
        200,
        b'{"access_token":"a","instance_url":"https://x","id":"","refresh_token":"new"}',
        "application/json",
        now=0,
    )
    flow.accept(token)
    assert flow.token_request(now=0).form["refresh_token"] == "new"


def test_password_flow_is_legacy_but_complete() -> None:
    """The password grant sends client id/secret, username and password + security token."""
    flow = PasswordFlow("u", "id", SecretStr("sec"), "user@x", SecretStr("pwTOKEN"))
    form = flow.token_request(now=0).form
    assert form == {
        "grant_type": "password",
        "client_id": "id",
        "client_secret": "sec",
        "username": "user@x",
        "password": "pwTOKEN",
    }


def test_token_response_parsing() -> None:
    """issued_at is milliseconds as a string; scopes split; ids come from the identity URL."""
    body = (
        b'{"access_token":"00D!x","instance_url":"https://acme.my.salesforce.com/",'
        b'"id":"https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",'
        b'"token_type":"Bearer","issued_at":"1676372418560","signature":"s","scope":"api refresh_token"}'
    )
    token = parse_token_response(200, body, "application/json", now=5.0)
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.issued_at == pytest.approx(1676372418.56)
    assert token.scopes == {"api", "refresh_token"}
    assert (token.org_id, token.user_id) == ("00Dxx0000001gPLEAY", "005xx000001SwiUAAS")
    assert "00D!x" not in repr(token)


@pytest.mark.parametrize(
    ("error", "description", "expected"),
    [
        ("invalid_grant", "user hasn't approved this consumer", InvalidGrantError),
        ("invalid_grant", "audience is invalid", InvalidGrantError),
        ("invalid_client_id", "client identifier invalid", InvalidClientError),
        ("invalid_client", "invalid client credentials", InvalidClientError),
    ],
)
def test_token_errors_map_to_classes(
    error: str, description: str, expected: type[AuthError]
) -> None:
    """OAuth error bodies become AuthError subclasses carrying error_description, flagged to
    pause the connection (throttle) rather than dead-letter each event."""
    body = f'{{"error":"{error}","error_description":"{description}"}}'.encode()
    with pytest.raises(expected) as caught:
        parse_token_response(400, body, "application/json", now=0)
    assert caught.value.message == description
    assert caught.value.throttle


async def test_token_endpoint_errors_surface_from_calls(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A refused JWT login fails the call with the token endpoint's reason."""
    org.token_script = [
        reply(
            400,
            {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
        )
    ]
    with pytest.raises(InvalidGrantError, match="approved"):
        await client.limits()
    assert org.requests == []


async def test_jwt_login_posts_the_assertion(
    org: FakeOrg, client: SalesforceClient, key_pair: KeyPair
) -> None:
    """The JWT grant is a form POST to {login_url}/services/oauth2/token."""
    org.on("GET", LIMITS, reply(200, {}))
    await client.limits()
    [seen] = org.token_requests
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = seen.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    jwt.decode(
        form["assertion"],
        key_pair.public_pem,
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
    )


async def test_fifty_concurrent_expired_calls_reauthenticate_once(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """50 concurrent calls that all meet INVALID_SESSION_ID cause exactly one token request."""
    org.on("GET", LIMITS, reply(200, {}))
    await client.limits()
    org.expire_tokens()
    org.token_delay_s = 0.05
    results = await asyncio.gather(*(client.limits() for _ in range(50)))
    assert len(results) == 50
    assert len(org.token_requests) == 2
    assert client.token_requests == 2


async def test_reauthentication_happens_once_per_request(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """If the fresh token is refused too, the call fails instead of looping."""
    org.on("GET", LIMITS, reply(200, {}))
    good = org.url
    org.token_script = [
        reply(200, {"access_token": f"bad{n}", "instance_url": good, "id": ""}) for n in range(5)
    ]
    with pytest.raises(SessionExpiredError) as caught:
        await client.limits()
    assert "after re-authenticating" in caught.value.message
    assert len(org.token_requests) == 2
    assert len(org.calls("GET", LIMITS)) == 2


async def test_session_not_valid_for_rest_is_not_retried(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """401 'This session is not valid for use with the REST API' fails at once, no re-auth."""
    body = [
        {
            "message": "This session is not valid for use with the REST API",
            "errorCode": "INVALID_SESSION_ID",
        }
    ]
    org.on("GET", LIMITS, reply(401, body))
    with pytest.raises(SessionNotValidForApiError):
        await client.limits()
    assert len(org.token_requests) == 1
    assert len(org.calls("GET", LIMITS)) == 1


async def test_concurrent_callers_share_one_failed_login(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """When the token endpoint refuses, concurrent callers share that one answer."""
    org.token_delay_s = 0.05
    org.token_script = [
        reply(400, {"error": "inactive_user", "error_description": "user is inactive"})
    ]
    results = await asyncio.gather(*(client.limits() for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, AuthError) for r in results)
    assert len(org.token_requests) == 1


async def test_token_endpoint_5xx_is_a_retriable_failure(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """A 503 from the token endpoint fails the call as a retriable ServerError (the caller's
    policy retries it), and is not remembered as a refused login: the next call asks again."""
    org.on("GET", LIMITS, reply(200, {}))
    org.token_script = [reply(503, "<html>busy</html>"), org.issue_token]
    with pytest.raises(ServerError) as caught:
        await client.limits()
    assert caught.value.retriable
    assert not caught.value.throttle
    await client.limits()
    assert len(org.token_requests) == 2


async def test_proactive_remint_after_max_age(org: FakeOrg, key_pair: KeyPair) -> None:
    """With token_max_age_s, a token older than that is replaced before use, not after a 401."""
    now = [1000.0]
    org.on("GET", LIMITS, reply(200, {}))
    settings = settings_for(org.url, key_pair, token_max_age_s=60)
    async with SalesforceClient(settings, clock=lambda: now[0]) as sf:
        await sf.limits()
        now[0] += 30
        await sf.limits()
        now[0] += 61
        await sf.limits()
    assert len(org.token_requests) == 2
    tokens = [r.headers["Authorization"] for r in org.requests]
    assert tokens[0] == tokens[1] != tokens[2]


async def test_client_credentials_against_the_fake(org: FakeOrg, key_pair: KeyPair) -> None:
    """The client authenticates with client credentials when settings say so."""
    org.on("GET", LIMITS, reply(200, {}))
    settings = settings_for(
        org.url,
        key_pair,
        auth=AuthMethod.CLIENT_CREDENTIALS,
        private_key=None,
        username=None,
        client_secret=SecretStr("s3cret"),
    )
    async with SalesforceClient(settings) as sf:
        await sf.limits()
    assert org.token_requests[0].form() == {"grant_type": "client_credentials"}
    assert org.token_requests[0].headers["Authorization"].startswith("Basic ")


def test_token_type_is_used_in_the_header() -> None:
    """The Authorization header is '<token_type> <access_token>'."""
    token = Token(SecretStr("abc"), "https://x", "", frozenset(), 0.0)
    assert token.authorization() == "Bearer abc"


async def test_a_refused_login_is_not_repeated_at_event_rate(
    org: FakeOrg, key_pair: KeyPair
) -> None:
    """After invalid_grant, calls within the cooldown fail at once without a token request."""
    now = [1000.0]
    org.token_script = [
        reply(
            400,
            {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
        )
    ]
    async with SalesforceClient(settings_for(org.url, key_pair), clock=lambda: now[0]) as sf:
        for _ in range(3):
            with pytest.raises(InvalidGrantError) as caught:
                await sf.limits()
        assert caught.value.retry_after == pytest.approx(5.0)
        assert len(org.token_requests) == 1
        now[0] += 6
        org.token_script = [org.issue_token]
        org.on("GET", LIMITS, reply(200, {}))
        await sf.limits()
    assert len(org.token_requests) == 2
