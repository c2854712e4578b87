"""Requester enrichment: Zendesk events that name people only by id get their name, email and
phone from the Zendesk Support API before they reach the topic.

Why here and not as a flow action (``zendesk.get_user``): see docs/zendesk.md, "Where
enrichment runs". In short, one lookup per event serves every flow; concurrent webhooks share
one ``show_many`` call; the record on the topic is complete, so a replay or a dry run months
later sees the same person without asking Zendesk; and a Zendesk outage costs a field, not an
event.

An event needs enrichment when it comes from Zendesk (``source == "zendesk"``) and its requester
has an id but no name, email or phone, or its organization an id but no name. The record gets
top-level ``requester`` / ``organization`` objects (which the decoder prefers to anything in
``detail``; fields the producer did send are kept) and ``attributes.enrichment``::

    {"status": "enriched"}                              or
    {"status": "ids_only", "reason": "rate_limited"}    the event goes on with ids only

Reasons: ``rate_limited`` (a 429, or paused by one), ``unavailable`` (no answer, 5xx),
``timeout`` (no answer within ``timeout_s``), ``unauthorized``/``forbidden`` (the credentials),
``not_found`` (no such user or organization), ``invalid_response``. Each is counted in
``stats`` (``enrichment.ids_only.<reason>``) and logged, at most once per reason every 10 s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.ingest.payloads import Record, encoded
from agents.ingest.settings import EnrichmentSettings
from agents.ingest.stats import Stats
from pipeline.events import Event
from topics.errors import DecodeError
from zendesk.client import Organization, User, ZendeskClient
from zendesk.directory import Directory
from zendesk.errors import ZendeskError

log = logging.getLogger(__name__)


def wants_requester(event: Event) -> bool:
    person = event.requester
    return (
        event.source == "zendesk"
        and person.id is not None
        and not (person.name or person.email or person.phone)
    )


def wants_organization(event: Event) -> bool:
    org = event.organization
    return event.source == "zendesk" and org.id is not None and not org.name


def enriched(
    doc: dict[str, Any],
    event: Event,
    user: User | None,
    organization: Organization | None,
    outcome: dict[str, str],
) -> dict[str, Any]:
    """``doc`` with the people filled in and ``attributes.enrichment`` set. Pure."""
    out = dict(doc)
    if user is not None:
        found = {
            "id": event.requester.id,
            "name": user.name,
            "email": user.email,
            "phone": user.phone,
        }
        out["requester"] = _merged(found, doc.get("requester"))
    if organization is not None:
        found = {"id": event.organization.id, "name": organization.name}
        out["organization"] = _merged(found, doc.get("organization"))
    attributes = doc.get("attributes")
    out["attributes"] = {
        **(attributes if isinstance(attributes, dict) else {}),
        "enrichment": outcome,
    }
    return out


def _merged(found: dict[str, str | None], sent: object) -> dict[str, str]:
    """What Zendesk returned, under what the producer sent (the producer's values win)."""
    kept = (
        {key: value for key, value in sent.items() if value is not None}
        if isinstance(sent, dict)
        else {}
    )
    return {**{key: value for key, value in found.items() if value}, **kept}


class Enricher:
    def __init__(self, client: ZendeskClient, settings: EnrichmentSettings, stats: Stats) -> None:
        self.client = client
        self.timeout_s = settings.timeout_s
        self.users: Directory[User] = Directory(
            client.show_many_users,
            ttl_s=settings.ttl_s,
            miss_ttl_s=settings.miss_ttl_s,
            linger_s=settings.linger_s,
        )
        self.organizations: Directory[Organization] = Directory(
            client.show_many_organizations,
            ttl_s=settings.ttl_s,
            miss_ttl_s=settings.miss_ttl_s,
            linger_s=settings.linger_s,
        )
        self.stats = stats

    async def enrich(self, record: Record) -> Record:
        """The record with its people looked up, or marked ``ids_only`` with the reason."""
        event = record.event
        user_wanted, org_wanted = wants_requester(event), wants_organization(event)
        if not (user_wanted or org_wanted):
            return record
        user_ids = [event.requester.id] if user_wanted and event.requester.id else []
        org_ids = [event.organization.id] if org_wanted and event.organization.id else []
        user = organization = None
        reason = None
        try:
            users, organizations = await self._lookup(user_ids, org_ids)
        except ZendeskError as error:
            reason = error.reason
        except TimeoutError:
            reason = "timeout"
        else:
            user = users.get(event.requester.id or "")
            organization = organizations.get(event.organization.id or "")
            if (user_wanted and user is None) or (org_wanted and organization is None):
                reason = "not_found"
        outcome = (
            {"status": "enriched"} if reason is None else {"status": "ids_only", "reason": reason}
        )
        try:
            record = encoded(enriched(record.doc, event, user, organization, outcome), record.input)
        except DecodeError as error:  # Zendesk sent what the decoder refuses: keep the ids only
            log.warning("enrichment of event %s dropped: %s", event.id, error.code)
            outcome = {"status": "ids_only", "reason": "invalid_response"}
        self._count(outcome, event)
        return record

    async def _lookup(
        self, user_ids: list[str], org_ids: list[str]
    ) -> tuple[dict[str, User | None], dict[str, Organization | None]]:
        users, organizations = self.users.cached(user_ids), self.organizations.cached(org_ids)
        if users is not None and organizations is not None:
            return users, organizations  # the common case once warm: no task, no timer
        async with asyncio.timeout(self.timeout_s):
            return await asyncio.gather(
                self.users.get_many(user_ids), self.organizations.get_many(org_ids)
            )

    async def close(self) -> None:
        await self.users.close()
        await self.organizations.close()
        await self.client.close()

    def _count(self, outcome: dict[str, str], event: Event) -> None:
        self.stats.count(f"enrichment.{outcome['status']}")
        reason = outcome.get("reason")
        if reason is not None:
            times = self.stats.count(f"enrichment.ids_only.{reason}")
            if self.stats.due(f"enrichment.{reason}"):
                log.warning(
                    "requester enrichment degraded to ids only (%s) for event %s; %d so far",
                    reason,
                    event.id,
                    times,
                )
