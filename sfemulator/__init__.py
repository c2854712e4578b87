"""A faithful local emulator of a Salesforce org's REST, OAuth and SOAP convertLead APIs.

See docs/emulator.md. Public API::

    from sfemulator import Emulator, EmulatorConfig, FaultRule, DemoCredentials
"""

from .config import API_VERSIONS, LATEST_API_VERSION, DemoCredentials, EmulatorConfig
from .connection import emulator_connection
from .emulator import Emulator
from .faults import FaultRule
from .rules import DuplicateRule, ValidationRule

__all__ = [
    "API_VERSIONS",
    "LATEST_API_VERSION",
    "DemoCredentials",
    "DuplicateRule",
    "Emulator",
    "EmulatorConfig",
    "FaultRule",
    "ValidationRule",
    "emulator_connection",
]
