"""Request bodies → the records to produce. Pure: bytes in, validated records out.

Every record is checked with the worker's own decoder (:func:`topics.codecs.decode_event`) on
the very bytes that will be produced, so a 400 from the ingest is exactly an event the worker
would have dead-lettered, and an accepted one decodes the same way there.

``POST /webhooks/zendesk`` tells the two kinds of Zendesk webhook apart by content:

- an event-subscription webhook (``"type": "zen:event-type:ticket.…"``) is produced byte for
  byte as received;
- anything else is a trigger or automation body written from ``docs/zendesk-trigger-body.json``:
  the generic envelope, read with four allowances for what Zendesk's placeholders render —
  an empty string means absent, at the top level and in ``ticket``, ``requester``,
  ``organization``, ``interaction`` and ``attributes`` (a ticket without an organization
  renders ``"id": ""``);
  ``ticket.tags`` may be the space-separated string ``{{ticket.tags}}`` gives; ``ticket.status``
  and ``ticket.priority`` are lower-cased (as for event webhooks); a missing ``id`` becomes
  ``zendesk-webhook-<X-Zendesk-Webhook-Invocation-Id>``, which Zendesk keeps when it retries
  the invocation, and a missing ``source`` ``zendesk``.

``POST /events`` takes one event (the generic envelope, or a Zendesk payload) or a JSON array
of them, all or nothing: one bad element refuses the whole request, naming its index.

Records go to the tickets input, except ``interaction.*`` events from ``POST /events``, which go
to the interactions input; ``?input=tickets|interactions`` chooses explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from agents.ingest.errors import BadRequest
from pipeline.events import Event
from topics.codecs import decode_event
from topics.errors import DecodeError, InvalidField, MalformedJson
from topics.zendesk import is_zendesk

Input = Literal["tickets", "interactions"]
INPUTS: tuple[Input, ...] = ("tickets", "interactions")
INVOCATION_HEADER = "X-Zendesk-Webhook-Invocation-Id"


@dataclass(frozen=True, slots=True)
class Record:
    """One event ready to produce: ``value`` is exactly what the worker will decode."""

    event: Event
    value: bytes
    doc: dict[str, Any]  # ``value`` parsed, for enrichment
    input: Input


def zendesk_webhook(raw: bytes, *, invocation_id: str | None) -> Record:
    """The record of one Zendesk webhook body (event subscription or trigger); BadRequest."""
    try:
        doc = _json(raw)
        if isinstance(doc, dict) and not is_zendesk(doc):
            return encoded(_trigger_body(doc, invocation_id), "tickets", source=raw)
        return Record(_decode(raw), raw, doc, "tickets")  # not an object: the decoder says so
    except DecodeError as error:
        raise BadRequest(error) from None


def events(raw: bytes, *, input_name: Input | None = None) -> list[Record]:
    """The records of a ``POST /events`` body: one event or an array of them; BadRequest."""
    try:
        doc = _json(raw)
    except DecodeError as error:
        raise BadRequest(error) from None
    if not isinstance(doc, list):
        try:
            event = _decode(raw)
        except DecodeError as error:
            raise BadRequest(error) from None
        assert isinstance(doc, dict)  # decode_event accepted it
        return [Record(event, raw, doc, input_name or route(event))]
    records = []
    for index, item in enumerate(doc):
        try:
            value = _dumps(item, source=None)
            event = _decode(value)
        except DecodeError as error:
            raise BadRequest(error, index) from None
        records.append(Record(event, value, item, input_name or route(event)))
    return records


def encoded(doc: dict[str, Any], input_name: Input, *, source: bytes | None = None) -> Record:
    """The record of a JSON object built or changed here (raises DecodeError). ``source``: the
    bytes ``doc`` was parsed from, whose own decoder error wins if ``doc`` cannot be encoded."""
    value = _dumps(doc, source=source)
    return Record(_decode(value), value, doc, input_name)


def _dumps(doc: Any, *, source: bytes | None) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson encodes at most 254 levels of nesting
        if source is not None:
            _decode(source)  # the decoder's own verdict on the original (too_deep) first
        raise InvalidField("$", "nested too deeply to be encoded again") from None


def route(event: Event) -> Input:
    return "interactions" if event.type.startswith("interaction.") else "tickets"


def _decode(value: bytes) -> Event:
    return decode_event(value, topic="ingest")


def _json(raw: bytes) -> Any:
    """``raw`` parsed. Bytes the parser refuses raise the decoder's own error for them
    (malformed, or nested deeper than the parser goes), so the 400 names what a dead letter
    would."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        _decode(raw)  # raises: the decoder parses with the same orjson
        raise MalformedJson(error.msg, error.pos) from None  # were it ever to accept them


#: Where a trigger body's placeholders render: an empty string there means absent.
_RENDERED = ("ticket", "requester", "organization", "interaction", "attributes")


def _trigger_body(doc: dict[str, Any], invocation_id: str | None) -> dict[str, Any]:
    body = _without_blanks(doc)
    for part in _RENDERED:
        if isinstance(body.get(part), dict):
            body[part] = _without_blanks(body[part])
    ticket = body.get("ticket")
    if isinstance(ticket, dict):
        if isinstance(ticket.get("tags"), str):
            ticket["tags"] = ticket["tags"].split()
        for key in ("status", "priority"):
            if isinstance(ticket.get(key), str):
                ticket[key] = ticket[key].lower()
    if "id" not in body and invocation_id:
        body["id"] = f"zendesk-webhook-{invocation_id}"
    body.setdefault("source", "zendesk")
    return body


def _without_blanks(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without its empty strings (Zendesk renders a missing value as "")."""
    return {key: value for key, value in fields.items() if value != ""}
