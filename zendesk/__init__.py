"""The Zendesk Support API client: the only package that speaks HTTP to Zendesk.

- :mod:`zendesk.settings` — credentials (API token or OAuth) and the account URL, from the
  environment; the only module here that reads it;
- :mod:`zendesk.client` — ``show_many`` lookups of users and organizations;
- :mod:`zendesk.directory` — batched, cached, single-flight lookups with rate-limit pauses;
- :mod:`zendesk.errors` — the error tree, each class with ``retriable``.

It imports nothing else of the project. The local emulator of these endpoints is the separate
package ``zdemulator`` (tests, demo and benchmarks only).
"""

from zendesk.client import MAX_IDS, Organization, User, ZendeskClient
from zendesk.directory import Directory
from zendesk.errors import ZendeskError
from zendesk.settings import ApiToken, OAuthToken, ZendeskSettings

__all__ = [
    "MAX_IDS",
    "ApiToken",
    "Directory",
    "OAuthToken",
    "Organization",
    "User",
    "ZendeskClient",
    "ZendeskError",
    "ZendeskSettings",
]
