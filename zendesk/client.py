"""The aiohttp client of the Zendesk Support API: the only code that speaks HTTP to Zendesk.

Two read-only calls, both documented to take up to 100 comma-separated ids and to return the
records that exist (ids that match nothing are simply absent):

- ``GET /api/v2/users/show_many.json?ids=1,2`` → ``{"users": [{"id", "name", "email",
  "phone", "organization_id", ...}]}`` ("Show Many Users", allowed for agents);
- ``GET /api/v2/organizations/show_many.json?ids=1,2`` → ``{"organizations": [{"id", "name",
  ...}]}`` ("Show Many Organizations").

One request per call, no retry here: a failure raises a :mod:`zendesk.errors` class and the
caller (:class:`zendesk.directory.Directory`) decides whether to wait (a 429's Retry-After) or
give up. Ids are Zendesk's integers, written as decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from zendesk.errors import InvalidResponse, TransportError, ZendeskError, for_response
from zendesk.settings import ZendeskSettings

#: Documented maximum of ids per show_many call.
MAX_IDS = 100


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    organization_id: str | None = None


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str | None = None


class ZendeskClient:
    """One session, one set of credentials. ``calls`` counts the requests sent."""

    def __init__(self, settings: ZendeskSettings) -> None:
        self.settings = settings
        self.calls = 0
        self._session: aiohttp.ClientSession | None = None

    async def show_many_users(self, ids: Sequence[str]) -> dict[str, User]:
        doc = await self._get("/api/v2/users/show_many.json", ids)
        return {user.id: user for user in (_user(item) for item in _records(doc, "users"))}

    async def show_many_organizations(self, ids: Sequence[str]) -> dict[str, Organization]:
        doc = await self._get("/api/v2/organizations/show_many.json", ids)
        return {
            org.id: org for org in (_organization(item) for item in _records(doc, "organizations"))
        }

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, ids: Sequence[str]) -> Any:
        if not 0 < len(ids) <= MAX_IDS:
            raise ValueError(f"show_many takes 1 to {MAX_IDS} ids, not {len(ids)}")
        session = self._session or self._open()
        self.calls += 1
        try:
            async with session.get(
                self.settings.base_url + path,
                params={"ids": ",".join(ids)},
                headers={
                    "Accept": "application/json",
                    "Authorization": self.settings.auth.authorization(),
                },
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise for_response(response.status, body, response.headers)
        except ZendeskError:
            raise
        except TimeoutError:
            raise TransportError(f"GET {path}: no answer in {self.settings.timeout_s}s") from None
        except aiohttp.ClientError as error:
            raise TransportError(f"GET {path}: {type(error).__name__}: {error}") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidResponse(f"GET {path}: the body is not JSON", status=200) from None

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            connector=aiohttp.TCPConnector(limit=8),
        )
        return self._session


def _records(doc: Any, key: str) -> list[Mapping[str, Any]]:
    items = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidResponse(f"expected {{{key!r}: [objects]}} in the response", status=200)
    return items


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        return None
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _user(item: Mapping[str, Any]) -> User:
    user_id = _id(item.get("id"))
    if user_id is None:
        raise InvalidResponse("a user without an id in the response", status=200)
    return User(
        id=user_id,
        name=_text(item.get("name")),
        email=_text(item.get("email")),
        phone=_text(item.get("phone")),
        organization_id=_id(item.get("organization_id")),
    )


def _organization(item: Mapping[str, Any]) -> Organization:
    org_id = _id(item.get("id"))
    if org_id is None:
        raise InvalidResponse("an organization without an id in the response", status=200)
    return Organization(id=org_id, name=_text(item.get("name")))
