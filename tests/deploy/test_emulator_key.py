"""The emulator's --key-file: a key found there is the one the emulated app trusts, so workers
configured with that file keep logging in across restarts of the emulator."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from salesforce.client import SalesforceClient
from salesforce.errors import SalesforceError
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from sfemulator.credentials import demo_credentials, with_signing_key


def new_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def test_an_emulator_trusts_the_key_it_was_given_and_no_other() -> None:
    kept = new_key()
    credentials = with_signing_key(demo_credentials(0), kept)
    assert credentials.client_id == demo_credentials(0).client_id
    async with Emulator(EmulatorConfig(credentials=credentials)) as emulator:
        connection = emulator_connection(emulator.url, credentials, emulator.api_version)
        async with SalesforceClient(connection) as client:
            await client.connect()
        # Negative control: the same app and user, another key.
        forged = connection.model_copy(update={"private_key": SecretStr(new_key())})
        async with SalesforceClient(forged) as client:
            with pytest.raises(SalesforceError):
                await client.connect()
