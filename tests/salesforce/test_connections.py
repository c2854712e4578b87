"""Several connections: one client (one token) each, by name, closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from salesforce.connections import Connections
from salesforce.settings import ConnectionSettings, SalesforceSettings, SettingsError
from sfemulator import Emulator, EmulatorConfig

TOKEN_ROUTE = "POST /services/oauth2/token"


def connection(name: str, emu: Emulator) -> ConnectionSettings:
    creds = emu.credentials
    return ConnectionSettings(
        name=name,
        login_url=emu.url,
        api_version=emu.api_version,
        client_id=creds.client_id,
        username=creds.username,
        private_key=SecretStr(creds.private_key_pem),
    )


@pytest.fixture
async def two_orgs() -> AsyncIterator[tuple[Emulator, Emulator]]:
    async with (
        Emulator(EmulatorConfig(seed=1)) as sandbox,
        Emulator(EmulatorConfig(seed=2)) as prod,
    ):
        yield sandbox, prod


async def test_each_connection_has_its_own_client_and_token(
    two_orgs: tuple[Emulator, Emulator],
) -> None:
    """Named connections reach their own org; repeated gets reuse one client and one token."""
    sandbox, prod = two_orgs
    settings = SalesforceSettings(
        connections={
            "sandbox": connection("sandbox", sandbox),
            "production": connection("production", prod),
        },
        default="production",
    )
    async with Connections(settings) as connections:
        assert connections.get() is connections.get("production")
        await connections.get("sandbox").create("Lead", {"LastName": "s", "Company": "c"})
        for _ in range(3):
            await connections.get().create("Lead", {"LastName": "p", "Company": "c"})
        indicators = await connections.indicators(["x"])
        with pytest.raises(SettingsError):
            connections.get("staging")
    assert [len(sandbox.records("Lead")), len(prod.records("Lead"))] == [1, 3]
    assert sandbox.call_counts()[TOKEN_ROUTE] == 1
    assert prod.call_counts()[TOKEN_ROUTE] == 1
    assert [(i.connection, i.connected) for i in indicators] == [
        ("sandbox", True),
        ("production", True),
    ]
    assert indicators[0].org_id != indicators[1].org_id
