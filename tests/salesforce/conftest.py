"""Fixtures for the Salesforce client tests: a scripted org on localhost and a key pair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from salesforce.client import SalesforceClient
from salesforce.settings import AuthMethod, ConnectionSettings
from tests.salesforce.fake_org import VERSION, FakeOrg


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    """A 2048-bit RSA key, the smallest Salesforce accepts for JWT bearer."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private, public)


@pytest.fixture
async def org() -> AsyncIterator[FakeOrg]:
    fake = FakeOrg()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.server = server
    try:
        yield fake
    finally:
        await server.close()


class NoSleep:
    """Records requested backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def no_sleep() -> NoSleep:
    return NoSleep()


def settings_for(url: str, key_pair: KeyPair, **overrides: object) -> ConnectionSettings:
    values: dict[str, object] = {
        "name": "test",
        "login_url": url,
        "api_version": VERSION,
        "auth": AuthMethod.JWT,
        "client_id": "3MVG9-test-consumer-key",
        "username": "integration@example.com",
        "private_key": SecretStr(key_pair.private_pem),
        "timeout_s": 2.0,
        "max_attempts": 3,
    }
    values.update(overrides)
    return ConnectionSettings.model_validate(values)


@pytest.fixture
async def client(
    org: FakeOrg, key_pair: KeyPair, no_sleep: NoSleep
) -> AsyncIterator[SalesforceClient]:
    async with SalesforceClient(settings_for(org.url, key_pair), sleep=no_sleep) as sf:
        yield sf
