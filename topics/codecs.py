"""Input bytes ↔ :class:`pipeline.events.Event`.

:func:`decode_event` accepts either format on any input topic and tells them apart by content:
a ``type`` starting with ``zen:event-type:`` is a Zendesk webhook payload
(:mod:`topics.zendesk`), anything else must be the generic envelope (:mod:`topics.envelope`).
Every failure is a :class:`topics.errors.DecodeError` whose ``code`` says what went wrong and
whose ``topic`` says where the bytes came from; a decode failure is never retriable.

Before any Python code walks the document, its size is checked (``max_bytes``) and, once orjson
(which recurses in C, up to 1024 levels) has parsed it, its nesting depth
(:data:`pipeline.events.MAX_DEPTH`, measured without recursion): deeper input is ``too_deep``.

:func:`encode_event` writes the generic envelope, so ``decode_event(encode_event(e)) == e``
for every event in canonical form (``ticket["id"] == ticket_id``); replay and redrive tools
republish events with it.
"""

from __future__ import annotations

import orjson

from pipeline.events import MAX_DEPTH, Event, nesting_depth
from topics.envelope import decode_envelope, envelope_of
from topics.errors import DecodeError, InvalidField, MalformedJson, PayloadTooLarge, TooDeep
from topics.zendesk import decode_zendesk, is_zendesk

#: 1 MiB, Kafka's default ``max.message.bytes``: anything larger was not produced by a
#: well-behaved producer and is rejected before parsing.
DEFAULT_MAX_BYTES = 1_048_576


def decode_event(raw: bytes, *, topic: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Decode one record value; raises a DecodeError subclass carrying ``topic``."""
    try:
        return _decode(raw, max_bytes)
    except DecodeError as error:
        error.topic = topic
        raise


def _decode(raw: bytes, max_bytes: int) -> Event:
    if len(raw) > max_bytes:
        raise PayloadTooLarge(len(raw), max_bytes)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if error.msg.startswith("depth limit exceeded"):  # orjson stops at 1024 levels
            raise TooDeep(MAX_DEPTH) from None
        raise MalformedJson(error.msg, error.pos) from None
    if nesting_depth(doc, stop_above=MAX_DEPTH) > MAX_DEPTH:
        raise TooDeep(MAX_DEPTH)
    if not isinstance(doc, dict):
        raise InvalidField("$", f"expected a JSON object, got {type(doc).__name__}")
    if is_zendesk(doc):
        return decode_zendesk(doc)
    return decode_envelope(doc)


def encode_event(event: Event) -> bytes:
    """The generic envelope for ``event`` as compact JSON with sorted keys."""
    return orjson.dumps(envelope_of(event), option=orjson.OPT_SORT_KEYS)
