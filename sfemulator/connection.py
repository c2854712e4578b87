"""The client's connection settings for an emulated org: JWT bearer as the demo service account.

The emulator imports the client's settings (never the other way round), so a test, the demo or
``actionflows worker --emulator`` can point the real client at a local org.
"""

from __future__ import annotations

from pydantic import SecretStr

from salesforce.settings import AuthMethod, ConnectionSettings

from .config import DemoCredentials


def emulator_connection(
    url: str, credentials: DemoCredentials, api_version: str
) -> ConnectionSettings:
    """Connection settings for the local emulator: JWT bearer as the demo service account."""
    return ConnectionSettings(
        name="emulator",
        login_url=url,
        api_version=api_version,
        auth=AuthMethod.JWT,
        client_id=credentials.client_id,
        username=credentials.username,
        private_key=SecretStr(credentials.private_key_pem),
        audience="https://login.salesforce.com",  # what real orgs expect, even behind My Domain
    )
