"""Salesforce for actionflows: the aiohttp client, OAuth flows, error registry and emulator.

The only package that speaks HTTP to Salesforce. :class:`SalesforceClient` implements
:class:`pipeline.ports.SalesforceGateway` for one connection; settings come from
:func:`load_settings` (see :mod:`salesforce.settings` for the environment variables).
"""

from salesforce.client import SalesforceClient
from salesforce.connections import Connections
from salesforce.errors import SalesforceError, for_code
from salesforce.limits import ApiUsage, Usage, parse_limit_info
from salesforce.settings import (
    AuthMethod,
    ConnectionSettings,
    SalesforceSettings,
    SettingsError,
    load_settings,
)

__all__ = [
    "ApiUsage",
    "AuthMethod",
    "ConnectionSettings",
    "Connections",
    "SalesforceClient",
    "SalesforceError",
    "SalesforceSettings",
    "SettingsError",
    "Usage",
    "for_code",
    "load_settings",
    "parse_limit_info",
]
