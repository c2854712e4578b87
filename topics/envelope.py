"""The generic envelope: the documented JSON shape for helpdesks other than Zendesk.

``docs/events.md`` is the specification; in short::

    {"specversion": "1.0",                 optional; "1.0" is the only version
     "id": "evt-1",                        required, string or integer; the idempotency anchor
     "type": "interaction.call",           required; family "ticket." or "interaction."
     "source": "freshdesk",                optional, default "generic"
     "time": "2026-11-25T12:00:00Z",       optional, RFC 3339, kept as sent
     "ticket": {"id": "42", ...},          ticket.id (or top-level ticket_id) required
     "requester": {"id", "name", "email", "phone"},
     "organization": {"id", "name"},
     "interaction": {"channel", "body"},
     "attributes": {...}}                  free-form, e.g. {"ai_lead_score": 87}

Required fields are checked strictly (type and non-emptiness). Unknown keys inside ``ticket``
and ``attributes`` are kept; unknown keys anywhere else are ignored, so producers may add
fields without breaking older workers.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.events import Event, Interaction, Organization, Person
from topics import _fields as f
from topics.errors import InvalidField, MissingField, UnknownEventType

SPEC_VERSION = "1.0"
EVENT_FAMILIES = ("ticket", "interaction")
_TYPE_RE = re.compile(r"^(ticket|interaction)(\.[a-z0-9_]+)+$")


def decode_envelope(doc: f.JsonObject) -> Event:
    """A decoded JSON object in the generic envelope → Event (raises DecodeError)."""
    version = doc.get("specversion")
    if version is not None and version != SPEC_VERSION:
        raise InvalidField(
            "$.specversion", f"unsupported version {version!r}, expected {SPEC_VERSION!r}"
        )
    event_id = f.req_id(doc, "id", "$")
    event_type = f.req_str(doc, "type", "$")
    if not _TYPE_RE.match(event_type):
        raise UnknownEventType(
            event_type,
            f"unknown event type {event_type!r}: generic types are 'ticket.<name>' or "
            "'interaction.<name>' in lower case",
        )
    ticket = decode_ticket(doc)
    attributes = f.obj(doc, "attributes", "$")
    return Event(
        id=event_id,
        type=event_type,
        ticket_id=ticket["id"],
        source=f.opt_str(doc, "source", "$") or "generic",
        time=f.opt_str(doc, "time", "$"),
        ticket=ticket,
        requester=decode_person(f.obj(doc, "requester", "$"), "$.requester"),
        organization=decode_organization(f.obj(doc, "organization", "$"), "$.organization"),
        interaction=decode_interaction(f.obj(doc, "interaction", "$"), "$.interaction"),
        attributes=dict(attributes or {}),
    )


def decode_ticket(doc: f.JsonObject) -> dict[str, Any]:
    """The ticket object, with ``id`` always present and a string."""
    raw = f.obj(doc, "ticket", "$") or {}
    nested_id = f.opt_id(raw, "id", "$.ticket")
    flat_id = f.opt_id(doc, "ticket_id", "$")
    if nested_id is None and flat_id is None:
        raise MissingField("$.ticket.id", "$.ticket.id (or $.ticket_id) is required")
    if nested_id is not None and flat_id is not None and nested_id != flat_id:
        raise InvalidField("$.ticket_id", f"{flat_id!r} disagrees with $.ticket.id {nested_id!r}")
    check_ticket_fields(raw, "$.ticket")
    return {**raw, "id": nested_id if nested_id is not None else flat_id}


def check_ticket_fields(ticket: f.JsonObject, path: str) -> None:
    """The well-known ticket fields flows compare against must have their documented types."""
    for key in ("subject", "status", "priority"):
        f.opt_str(ticket, key, path)
    f.opt_str_list(ticket, "tags", path)


def decode_person(raw: f.JsonObject | None, path: str) -> Person:
    if raw is None:
        return Person()
    return Person(
        id=f.opt_id(raw, "id", path),
        name=f.opt_str(raw, "name", path),
        email=f.opt_str(raw, "email", path),
        phone=f.opt_str(raw, "phone", path),
    )


def decode_organization(raw: f.JsonObject | None, path: str) -> Organization:
    if raw is None:
        return Organization()
    return Organization(id=f.opt_id(raw, "id", path), name=f.opt_str(raw, "name", path))


def decode_interaction(raw: f.JsonObject | None, path: str) -> Interaction:
    if raw is None:
        return Interaction()
    return Interaction(channel=f.opt_str(raw, "channel", path), body=f.opt_str(raw, "body", path))


def _compact(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


def envelope_of(event: Event) -> dict[str, Any]:
    """The generic envelope for ``event``, as plain JSON-ready data (None fields omitted)."""
    doc: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "ticket": {**event.ticket, "id": event.ticket_id},
    }
    if event.time is not None:
        doc["time"] = event.time
    person = event.requester
    parts = {
        "requester": _compact(
            id=person.id, name=person.name, email=person.email, phone=person.phone
        ),
        "organization": _compact(id=event.organization.id, name=event.organization.name),
        "interaction": _compact(channel=event.interaction.channel, body=event.interaction.body),
    }
    doc.update({key: value for key, value in parts.items() if value})
    if event.attributes:
        doc["attributes"] = dict(event.attributes)
    return doc
