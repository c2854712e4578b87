"""What Zendesk does on its side, for the ingest's tests: sign a request, render a trigger body."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "docs" / "zendesk-trigger-body.json"

#: What Zendesk's placeholders render for one ticket (values as its placeholder reference shows
#: them: title-case status and priority, space-separated tags, "" for what the ticket lacks).
TICKET_35500 = {
    "ticket.id": "35500",
    "ticket.title": "Quote for 200 seats",
    "ticket.status": "Open",
    "ticket.priority": "High",
    "ticket.ticket_type": "Question",
    "ticket.tags": "sales vip",
    "ticket.external_id": "",
    "ticket.link": "example.zendesk.com/agent/tickets/35500",
    "ticket.brand.name": "Example",
    "ticket.group.name": "Sales",
    "ticket.updated_at_with_timestamp": "2026-11-25T09:00Z",
    "ticket.requester.id": "90100",
    "ticket.requester.name": 'Ada "Countess" Lovelace',
    "ticket.requester.email": "ada@analytical.example",
    "ticket.requester.phone": "+44 20 7946 0100",
    "ticket.organization.id": "",
    "ticket.organization.name": "",
    "ticket.via": "Web Form",
    "ticket.description": "We need a quote.\nTwo lines.",
}


def signed(secret: str, body: bytes, *, at: dt.datetime | None = None) -> dict[str, str]:
    """The two signature headers Zendesk sends, computed from its documented recipe:
    base64(HMAC-SHA256(secret, timestamp + body))."""
    stamp = (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


def render(template: str, values: dict[str, str]) -> bytes:
    """A trigger body as Zendesk sends it: each {{placeholder}} replaced by its value, escaped
    for the JSON string it sits in; a placeholder without a value renders as ""."""

    def value(match: re.Match[str]) -> str:
        return json.dumps(values.get(match.group(1).strip(), ""))[1:-1]

    return re.sub(r"\{\{([^}]+)\}\}", value, template).encode()
