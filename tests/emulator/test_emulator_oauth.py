"""OAuth 2.0 at /services/oauth2/*: the grants, their real error bodies, sessions and identity."""

from __future__ import annotations

import base64
import time

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from emulator_helpers import JWT_GRANT, jwt_assertion

from sfemulator import Emulator, EmulatorConfig

TOKEN_KEYS = {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}


async def post_token(
    emu: Emulator,
    http: aiohttp.ClientSession,
    data: dict[str, str],
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    async with http.post(f"{emu.url}/services/oauth2/token", data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_jwt_bearer_issues_a_token_without_expires_in(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A valid RS256 assertion yields the §1.1 body: no expires_in, issued_at in ms as a string."""
    status, body = await post_token(
        emu, http, {"grant_type": JWT_GRANT, "assertion": jwt_assertion(emu)}
    )
    assert status == 200
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == emu.url
    assert body["id"] == f"{emu.url}/id/{emu.credentials.org_id}/{emu.credentials.user_id}"
    assert isinstance(body["issued_at"], str)
    assert abs(int(body["issued_at"]) - time.time() * 1000) < 60_000
    async with http.get(
        f"{emu.url}/services/data/v{emu.api_version}/limits",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    ) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"aud": "https://example.com"}, "invalid_grant", "audience is invalid"),
        ({"exp": int(time.time()) - 10}, "invalid_grant", "expired authorization code"),
        ({"iss": "unknown-client"}, "invalid_client_id", "client identifier invalid"),
        ({"sub": "someone@else.example"}, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
async def test_jwt_bearer_rejections_use_salesforce_errors(
    emu: Emulator,
    http: aiohttp.ClientSession,
    overrides: dict[str, object],
    error: str,
    description: str,
) -> None:
    """Bad aud, past exp, unknown iss and unknown sub fail with 400 and the real strings."""
    status, body = await post_token(
        emu, http, {"grant_type": JWT_GRANT, "assertion": jwt_assertion(emu, **overrides)}
    )
    assert (status, body) == (400, {"error": error, "error_description": description})


async def test_jwt_signed_by_another_key_is_an_invalid_assertion(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """An assertion not signed by the connected app's certificate key is refused."""
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    status, body = await post_token(
        emu, http, {"grant_type": JWT_GRANT, "assertion": jwt_assertion(emu, _key=other)}
    )
    assert (status, body["error"], body["error_description"]) == (
        400,
        "invalid_grant",
        "invalid assertion",
    )


async def test_test_salesforce_audience_is_accepted(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Sandbox logins use aud=https://test.salesforce.com, which real orgs accept."""
    assertion = jwt_assertion(emu, aud="https://test.salesforce.com")
    status, _ = await post_token(emu, http, {"grant_type": JWT_GRANT, "assertion": assertion})
    assert status == 200


async def test_client_credentials_in_body_or_basic_auth(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Client credentials work with the secret in the body or in HTTP Basic auth."""
    creds = emu.credentials
    status, body = await post_token(
        emu,
        http,
        {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
    )
    assert status == 200
    assert "refresh_token" not in body
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    status, _ = await post_token(
        emu, http, {"grant_type": "client_credentials"}, {"Authorization": f"Basic {basic}"}
    )
    assert status == 200


async def test_client_credentials_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A wrong secret, an unknown client and a login.salesforce.com host are each refused."""
    creds = emu.credentials
    grant = {"grant_type": "client_credentials", "client_id": creds.client_id}
    assert await post_token(emu, http, {**grant, "client_secret": "wrong"}) == (
        400,
        {"error": "invalid_client", "error_description": "invalid client credentials"},
    )
    assert await post_token(emu, http, {**grant, "client_id": "nope", "client_secret": "x"}) == (
        400,
        {"error": "invalid_client_id", "error_description": "client identifier invalid"},
    )
    status, body = await post_token(
        emu, http, {**grant, "client_secret": creds.client_secret}, {"Host": "login.salesforce.com"}
    )
    assert (status, body["error_description"]) == (400, "request not supported on this domain")


async def test_password_grant_and_unsupported_grant(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """The legacy password grant works with password+token; unknown grants are refused."""
    creds = emu.credentials
    form = {
        "grant_type": "password",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "username": creds.username,
        "password": creds.password,
    }
    assert (await post_token(emu, http, form))[0] == 200
    assert await post_token(emu, http, {**form, "password": "bad"}) == (
        400,
        {"error": "invalid_grant", "error_description": "authentication failure"},
    )
    assert (await post_token(emu, http, {"grant_type": "magic"}))[1]["error"] == (
        "unsupported_grant_type"
    )


async def test_refresh_token_rotation_invalidates_the_old_token(
    http: aiohttp.ClientSession,
) -> None:
    """With rotation on, each refresh returns a new refresh token and the old one stops working."""
    async with Emulator(EmulatorConfig(refresh_token_rotation=True)) as emu:
        creds = emu.credentials
        first = emu.mint_refresh_token()
        form = {
            "grant_type": "refresh_token",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
        status, body = await post_token(emu, http, {**form, "refresh_token": first})
        assert status == 200
        second = body["refresh_token"]
        assert second != first
        assert await post_token(emu, http, {**form, "refresh_token": first}) == (
            400,
            {"error": "invalid_grant", "error_description": "expired access/refresh token"},
        )


async def test_refresh_without_rotation_keeps_the_refresh_token(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Without rotation the same refresh token keeps working and none is returned."""
    refresh = emu.mint_refresh_token()
    form = {
        "grant_type": "refresh_token",
        "client_id": emu.credentials.client_id,
        "refresh_token": refresh,
    }
    for _ in range(2):
        status, body = await post_token(emu, http, form)
        assert status == 200
        assert "refresh_token" not in body


async def test_tokens_expire_after_the_session_lifetime(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """After token_lifetime_s the API answers 401 INVALID_SESSION_ID with WWW-Authenticate."""
    token = emu.issue_access_token()
    url = f"{emu.url}/services/data/v{emu.api_version}/limits"
    headers = {"Authorization": f"Bearer {token}"}
    emu.advance_clock(7199)
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200
    emu.advance_clock(2)
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Token"
        assert await resp.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        assert "Sforce-Limit-Info" not in resp.headers


async def test_expire_tokens_and_revoke(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """expire_tokens() kills every session; /revoke kills one; a second revoke is invalid_token."""
    url = f"{emu.url}/services/data/v{emu.api_version}/limits"
    first = emu.issue_access_token()
    emu.expire_tokens()
    async with http.get(url, headers={"Authorization": f"Bearer {first}"}) as resp:
        assert resp.status == 401
    second = emu.issue_access_token()
    async with http.post(f"{emu.url}/services/oauth2/revoke", data={"token": second}) as resp:
        assert resp.status == 200
    async with http.post(f"{emu.url}/services/oauth2/revoke", data={"token": second}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_token")
    async with http.get(url, headers={"Authorization": f"Bearer {second}"}) as resp:
        assert resp.status == 401


async def test_introspection_reports_exp_and_activity(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Introspection needs client auth and is the one place exp is visible."""
    creds = emu.credentials
    token = emu.issue_access_token()
    form = {"token": token, "client_id": creds.client_id, "client_secret": creds.client_secret}
    async with http.post(f"{emu.url}/services/oauth2/introspect", data=form) as resp:
        body = await resp.json()
    assert body["active"] is True
    assert body["exp"] - body["iat"] == 7200
    assert body["username"] == creds.username
    async with http.post(
        f"{emu.url}/services/oauth2/introspect", data={**form, "token": "nope"}
    ) as resp:
        assert await resp.json() == {"active": False}


async def test_identity_url_describes_the_integration_user(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """GET the token's id URL with the bearer token: org, user, urls.rest with the version."""
    creds = emu.credentials
    token = emu.issue_access_token()
    url = f"{emu.url}/id/{creds.org_id}/{creds.user_id}"
    async with http.get(
        url, params={"version": "latest"}, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        body = await resp.json()
    assert body["organization_id"] == creds.org_id
    assert body["user_id"] == creds.user_id
    assert body["username"] == creds.username
    assert body["user_type"] == "STANDARD"
    assert body["urls"]["rest"] == f"{emu.url}/services/data/v{emu.api_version}/"
    async with http.get(url, headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 403
