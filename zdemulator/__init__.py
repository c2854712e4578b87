"""A local emulator of the Zendesk Support API's user and organization lookups.

A test, demo and benchmark helper: production code never imports it (``tests/test_layout.py``
checks). It imports the client's settings (to hand out client settings that point at it), never
the other way round. See ``docs/zendesk.md``.
"""

from zdemulator.emulator import API_TOKEN, EMAIL, OAUTH_TOKEN, ZendeskEmulator

__all__ = ["API_TOKEN", "EMAIL", "OAUTH_TOKEN", "ZendeskEmulator"]
