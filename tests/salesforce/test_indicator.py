"""The connection indicator: connected details, why not, scope review and available actions."""

from __future__ import annotations

import pytest
from rich.console import Console

from salesforce.client import SalesforceClient
from salesforce.connect_cli import render
from salesforce.indicator import build_indicator, environment_from_host, scope_warnings
from salesforce.settings import AuthMethod
from tests.salesforce.fake_org import DATA, ORG_ID, USER_ID, FakeOrg, reply, sf_error

IDENTITY = f"/id/{ORG_ID}/{USER_ID}"


def script_org(org: FakeOrg) -> None:
    org.on(
        "GET",
        IDENTITY,
        reply(
            200,
            {
                "username": "svc@acme.com",
                "display_name": "Integration",
                "organization_id": ORG_ID,
                "user_id": USER_ID,
            },
        ),
    )
    org.on(
        "GET",
        f"{DATA}/query",
        reply(
            200,
            {
                "totalSize": 1,
                "done": True,
                "records": [{"Name": "Acme", "IsSandbox": True, "InstanceName": "CS42"}],
            },
        ),
    )
    org.on(
        "GET",
        "/services/data/",
        reply(200, [{"version": "61.0"}, {"version": "62.0"}, {"version": "9.0"}]),
    )
    org.on(
        "GET",
        f"{DATA}/sobjects/",
        reply(
            200,
            {
                "sobjects": [
                    {"name": "Lead", "createable": True, "deletable": False, "queryable": True}
                ]
            },
        ),
    )


async def test_connected_indicator(org: FakeOrg, client: SalesforceClient) -> None:
    """A connected indicator shows instance, org, user, sandbox flag, versions, usage, actions."""
    script_org(org)
    indicator = await build_indicator(
        client,
        requirements={
            "create lead": ("Lead", "createable"),
            "delete lead": ("Lead", "deletable"),
            "find case": ("Case", "queryable"),
        },
    )
    assert indicator.connected
    assert indicator.instance_url == org.url
    assert (indicator.org_id, indicator.org_name, indicator.username) == (
        ORG_ID,
        "Acme",
        "svc@acme.com",
    )
    assert indicator.environment == "sandbox"
    assert indicator.environment_source == "Organization.IsSandbox"
    assert indicator.latest_api_version == "62.0"
    assert indicator.api_usage is not None
    assert indicator.scopes == ("api",)
    assert indicator.warnings == ()
    assert [(a.name, a.available) for a in indicator.actions] == [
        ("create lead", True),
        ("delete lead", False),
        ("find case", False),
    ]
    console = Console(record=True, width=120)
    render(indicator, console)
    text = console.export_text()
    assert "● connected" in text  # not a substring of "● not connected"
    assert "svc@acme.com" in text


async def test_not_connected_says_why(org: FakeOrg, client: SalesforceClient) -> None:
    """A refused login gives connected=False with the reason and a hint to fix it."""
    org.token_script = [
        reply(
            400,
            {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
        )
    ]
    indicator = await build_indicator(client, ["salesforce.create_record lead"])
    assert not indicator.connected
    assert indicator.problem is not None
    assert "approved" in indicator.problem
    assert indicator.hint is not None
    assert "pre-authorise" in indicator.hint
    assert indicator.actions == ()


async def test_unreadable_organization_falls_back_to_host(
    org: FakeOrg, client: SalesforceClient
) -> None:
    """Without access to Organization, the environment comes from the host, with a warning."""
    script_org(org)
    org.on(
        "GET",
        f"{DATA}/query",
        sf_error(400, "INVALID_TYPE", "sObject type 'Organization' is not supported."),
    )
    indicator = await build_indicator(client, ["a"])
    assert indicator.connected
    assert indicator.environment_source == "instance host"
    assert any("Organization" in w for w in indicator.warnings)
    assert [a.name for a in indicator.actions] == ["a"]


@pytest.mark.parametrize(
    ("scopes", "method", "expected"),
    [
        ({"api"}, AuthMethod.JWT, []),
        ({"api", "refresh_token"}, AuthMethod.REFRESH_TOKEN, []),
        ({"id"}, AuthMethod.JWT, ["required scope 'api' is not granted"]),
        (
            {"api"},
            AuthMethod.REFRESH_TOKEN,
            ["refresh flow without 'refresh_token'/'offline_access' scope"],
        ),
        (
            {"api", "full", "web"},
            AuthMethod.JWT,
            [
                "scope 'full' is broader than this integration needs",
                "scope 'web' is broader than this integration needs",
            ],
        ),
        (
            {"api", "offline_access"},
            AuthMethod.JWT,
            ["scope offline_access is not needed by the jwt flow"],
        ),
    ],
)
def test_scope_review(scopes: set[str], method: AuthMethod, expected: list[str]) -> None:
    """api is required; refresh scopes only for the refresh flow; broad scopes are flagged."""
    assert scope_warnings(scopes, method) == expected


def test_environment_from_host() -> None:
    """Sandbox hosts are recognised by My Domain suffix or a legacy csNN pod."""
    assert environment_from_host("https://acme--uat.sandbox.my.salesforce.com") == "sandbox"
    assert environment_from_host("https://cs42.salesforce.com") == "sandbox"
    assert environment_from_host("https://csacme.my.salesforce.com") == "production"
    assert environment_from_host("http://127.0.0.1:8080") is None
