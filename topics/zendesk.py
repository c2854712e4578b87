"""Zendesk ticket-event webhooks (``zen:event-type:ticket.*``) → Event.

Mapping (``docs/events.md`` has the full table):

- ``type`` ``zen:event-type:ticket.created`` → ``ticket.created``; only the ticket event types
  in :data:`ZENDESK_TICKET_EVENT_TYPES` are accepted, anything else is UnknownEventType.
- ``id`` → ``Event.id``; ``time`` → ``Event.time``; ``source`` is ``"zendesk"``.
- ticket id from ``detail.id``, else from ``subject`` (``zen:ticket:<id>``).
- ``detail`` → ``Event.ticket`` (status and priority lower-cased: webhooks send ``"Open"``,
  the REST API and flows use ``"open"``); ``event.current`` / ``event.previous`` →
  ``ticket["change"]`` (status and priority values lower-cased there too); ``event.comment`` → ``ticket["comment"]`` and the interaction body.
- Zendesk sends ids, not people. A producer may enrich the payload with a top-level
  ``requester`` / ``organization`` object (same shape as the generic envelope), or put them
  in ``detail.requester`` / ``detail.organization``; otherwise only ``requester.id``
  (``detail.requester_id``) and ``organization.id`` (``detail.organization_id``) are set.
- a top-level ``attributes`` object (e.g. ``{"ai_lead_score": 91}``) is kept;
  ``attributes["zendesk"]`` is reserved for account_id, event version and ``meta.sequence``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pipeline.events import Event, Interaction
from topics import _fields as f
from topics.envelope import check_ticket_fields, decode_organization, decode_person
from topics.errors import InvalidField, MissingField, UnknownEventType

ZENDESK_TYPE_PREFIX = "zen:event-type:"

#: Ticket event types from Zendesk's webhook ticket-events reference.
ZENDESK_TICKET_EVENT_TYPES = frozenset(
    f"ticket.{name}"
    for name in (
        "created",
        "agent_assignment_changed",
        "attachment_linked_to_comment",
        "attachment_redacted_from_comment",
        "brand_changed",
        "comment_added",
        "comment_made_private",
        "comment_redacted",
        "custom_field_changed",
        "custom_status_changed",
        "description_changed",
        "email_ccs_changed",
        "external_id_changed",
        "followers_changed",
        "form_changed",
        "group_assignment_changed",
        "marked_as_spam",
        "merged",
        "organization_changed",
        "permanently_deleted",
        "priority_changed",
        "problem_link_changed",
        "requester_changed",
        "sla_policy_changed",
        "ola_policy_changed",
        "schedule_changed",
        "soft_deleted",
        "status_changed",
        "subject_changed",
        "submitter_changed",
        "tags_changed",
        "task_due_at_changed",
        "type_changed",
        "undeleted",
    )
)

_SUBJECT_RE = re.compile(r"^zen:ticket:(\d+)$")
_ENRICHMENT_KEYS = ("requester", "organization")


def is_zendesk(doc: f.JsonObject) -> bool:
    event_type = doc.get("type")
    return isinstance(event_type, str) and event_type.startswith(ZENDESK_TYPE_PREFIX)


def decode_zendesk(doc: f.JsonObject) -> Event:
    """A decoded Zendesk webhook payload → Event (raises DecodeError)."""
    event_type = _event_type(f.req_str(doc, "type", "$"))
    event_id = f.req_id(doc, "id", "$")
    detail = f.obj(doc, "detail", "$")
    if detail is None:
        raise MissingField("$.detail", "$.detail is required for Zendesk ticket events")
    change = f.obj(doc, "event", "$") or {}
    comment = f.obj(change, "comment", "$.event")
    ticket = _ticket(doc, detail, change, comment, event_type)
    requester = decode_person(_enrichment(doc, detail, "requester"), "$.requester")
    if requester.id is None:
        requester = replace(requester, id=f.opt_id(detail, "requester_id", "$.detail"))
    organization = decode_organization(_enrichment(doc, detail, "organization"), "$.organization")
    if organization.id is None:
        organization = replace(organization, id=f.opt_id(detail, "organization_id", "$.detail"))
    via = f.obj(detail, "via", "$.detail") or {}
    body = f.opt_str(comment, "body", "$.event.comment") if comment else None
    if body is None and event_type == "ticket.created":
        body = f.opt_str(detail, "description", "$.detail")
    return Event(
        id=event_id,
        type=event_type,
        ticket_id=ticket["id"],
        source="zendesk",
        time=f.opt_str(doc, "time", "$"),
        ticket=ticket,
        requester=requester,
        organization=organization,
        interaction=Interaction(channel=f.opt_str(via, "channel", "$.detail.via"), body=body),
        attributes=_attributes(doc, change),
    )


def _event_type(raw_type: str) -> str:
    event_type = raw_type.removeprefix(ZENDESK_TYPE_PREFIX)
    if event_type not in ZENDESK_TICKET_EVENT_TYPES:
        kind = "not a Zendesk ticket event" if not event_type.startswith("ticket.") else "unknown"
        raise UnknownEventType(raw_type, f"{kind} type {raw_type!r}")
    return event_type


def _ticket(
    doc: f.JsonObject,
    detail: f.JsonObject,
    change: f.JsonObject,
    comment: f.JsonObject | None,
    event_type: str,
) -> dict[str, Any]:
    ticket_id = f.opt_id(detail, "id", "$.detail")
    subject = f.opt_str(doc, "subject", "$")
    if subject is not None:
        match = _SUBJECT_RE.match(subject)
        if match is None:
            raise InvalidField("$.subject", f"expected 'zen:ticket:<id>', got {subject!r}")
        if ticket_id is not None and ticket_id != match.group(1):
            raise InvalidField("$.subject", f"{subject!r} disagrees with $.detail.id {ticket_id!r}")
        ticket_id = match.group(1)
    if ticket_id is None:
        raise MissingField("$.detail.id", "$.detail.id (or a zen:ticket:<id> subject) is required")
    check_ticket_fields(detail, "$.detail")
    ticket = {key: value for key, value in detail.items() if key not in _ENRICHMENT_KEYS}
    ticket["id"] = ticket_id
    for key in ("status", "priority"):
        if isinstance(ticket.get(key), str):
            ticket[key] = ticket[key].lower()
    moved = {
        key: _lowered(change[key], event_type) for key in ("current", "previous") if key in change
    }
    if moved:
        ticket["change"] = moved
    if comment is not None:
        ticket["comment"] = dict(comment)
    return ticket


_LOWERED_CHANGES = {"ticket.status_changed", "ticket.priority_changed"}


def _lowered(value: Any, event_type: str) -> Any:
    """Status and priority values in a change, lower-cased like the ticket's own fields."""
    if isinstance(value, str) and event_type in _LOWERED_CHANGES:
        return value.lower()
    if isinstance(value, dict):
        return {
            key: item.lower() if key in ("status", "priority") and isinstance(item, str) else item
            for key, item in value.items()
        }
    return value


def _enrichment(doc: f.JsonObject, detail: f.JsonObject, key: str) -> f.JsonObject | None:
    top = f.obj(doc, key, "$")
    return top if top is not None else f.obj(detail, key, "$.detail")


def _attributes(doc: f.JsonObject, change: f.JsonObject) -> dict[str, Any]:
    attributes = dict(f.obj(doc, "attributes", "$") or {})
    meta = f.obj(change, "meta", "$.event") or {}
    zendesk = {
        "account_id": doc.get("account_id"),
        "event_version": doc.get("zendesk_event_version"),
        "sequence": meta.get("sequence"),
    }
    attributes["zendesk"] = {key: value for key, value in zendesk.items() if value is not None}
    return attributes
