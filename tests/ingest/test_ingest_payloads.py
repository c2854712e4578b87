"""Request bodies become exactly the records the worker decodes, or a 400 saying why."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from agents.ingest.errors import BadRequest
from agents.ingest.payloads import Record, events, route, zendesk_webhook
from tests.ingest.zendesk_side import TEMPLATE, TICKET_35500, render
from topics.codecs import decode_event
from topics.errors import DecodeError

ZEN = (
    b'{"type":"zen:event-type:ticket.created","id":"01JZ","subject":"zen:ticket:35436",'
    b'"detail":{"id":"35436","status":"NEW","requester_id":"90001"}}'
)


def generic(event_id: str = "e1", event_type: str = "interaction.call", **extra: object) -> dict:
    return {"id": event_id, "type": event_type, "ticket": {"id": "T1"}, **extra}


def test_an_event_subscription_webhook_is_produced_byte_for_byte() -> None:
    """A zen:event-type body is not rewritten: the record is the request body."""
    record = zendesk_webhook(ZEN, invocation_id="123")
    assert record.value == ZEN
    assert record.event == decode_event(ZEN, topic="x")
    assert (record.event.ticket_id, record.input) == ("35436", "tickets")


def test_the_documented_trigger_template_yields_the_requester() -> None:
    """docs/zendesk-trigger-body.json, rendered by Zendesk, decodes to an event whose requester
    has name, email and phone, with tags, status and priority as flows compare them."""
    body = render(TEMPLATE.read_text(), TICKET_35500)
    record = zendesk_webhook(body, invocation_id="8350205582")
    event = record.event
    assert (event.id, event.type, event.source) == (
        "zendesk-webhook-8350205582",
        "ticket.created",
        "zendesk",
    )
    assert event.ticket_id == "35500"
    assert event.requester.name == 'Ada "Countess" Lovelace'
    assert event.requester.email == "ada@analytical.example"
    assert event.requester.phone == "+44 20 7946 0100"
    assert event.requester.id == "90100"
    assert event.ticket["tags"] == ["sales", "vip"]
    assert (event.ticket["status"], event.ticket["priority"]) == ("open", "high")
    assert event.organization.id is None  # rendered "" for a ticket without one
    assert "external_id" not in event.ticket
    assert event.interaction.body == "We need a quote.\nTwo lines."
    assert decode_event(record.value, topic="x") == event  # what the worker will see


def test_a_trigger_body_keeps_its_own_id() -> None:
    """An admin who writes an id in the template gets that id, not the invocation's."""
    body = orjson.dumps(generic("created-35500", "ticket.created"))
    assert zendesk_webhook(body, invocation_id="999").event.id == "created-35500"


def test_a_trigger_body_without_id_or_invocation_is_refused() -> None:
    """Without an id there is nothing to recognise a redelivery by: 400 missing_field $.id."""
    doc = generic()
    del doc["id"]
    with pytest.raises(BadRequest) as refused:
        zendesk_webhook(orjson.dumps(doc), invocation_id=None)
    assert refused.value.body() == {
        "error": "missing_field",
        "reason": "$.id is required",
        "path": "$.id",
    }


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (b'{"type": "zen:event-type:ticket.created", "id": "x"', "malformed_json", None),
        (b"[1, 2]", "invalid_field", "$"),
        (
            b'{"type": "zen:event-type:user.created", "id": "1", "detail": {"id": "1"}}',
            "unknown_event_type",
            None,
        ),
        (b'{"type": "zen:event-type:ticket.created", "id": "1"}', "missing_field", "$.detail"),
        (
            b'{"id": "1", "type": "ticket.created", "ticket": {"id": "1", "tags": [1]}}',
            "invalid_field",
            "$.ticket.tags[0]",
        ),
        (b"", "malformed_json", None),
    ],
)
def test_an_undecodable_webhook_is_a_400_with_the_decoders_reason(
    body: bytes, code: str, path: str | None
) -> None:
    """The ingest refuses what the worker's decoder refuses, with the same code and path."""
    with pytest.raises(BadRequest) as refused:
        zendesk_webhook(body, invocation_id="1")
    answer = refused.value.body()
    assert answer["error"] == code
    assert answer.get("path") == path
    assert answer["reason"]


def test_an_unescaped_quote_from_a_placeholder_is_a_400_with_the_position() -> None:
    """If a placeholder's value broke the JSON, the answer says where (Zendesk's activity log
    shows it), and nothing is produced."""
    with pytest.raises(BadRequest) as refused:
        zendesk_webhook(b'{"id": "1", "requester": {"name": "Ada "C" L"}}', invocation_id="1")
    assert refused.value.body()["error"] == "malformed_json"
    assert "at byte" in refused.value.reason


def test_events_takes_one_event_or_an_array() -> None:
    """POST /events: a single envelope is produced as sent; an array becomes one record each."""
    one = orjson.dumps(generic("a"))
    [record] = events(one)
    assert record.value == one
    many = events(orjson.dumps([generic("a"), generic("b", "ticket.created"), orjson.loads(ZEN)]))
    assert [(r.event.id, r.input) for r in many] == [
        ("a", "interactions"),
        ("b", "tickets"),
        ("01JZ", "tickets"),
    ]
    assert all(decode_event(r.value, topic="x") == r.event for r in many)


def test_an_array_with_one_bad_event_is_refused_whole() -> None:
    """All or nothing: the 400 names the bad element's index."""
    body = orjson.dumps([generic("a"), generic("b", "order.created"), generic("c")])
    with pytest.raises(BadRequest) as refused:
        events(body)
    assert refused.value.body()["index"] == 1
    assert refused.value.body()["error"] == "unknown_event_type"


def test_input_routing() -> None:
    """interaction.* goes to the interactions input, the rest to tickets, unless chosen."""
    assert (
        route(decode_event(orjson.dumps(generic(event_type="interaction.chat")), topic="x"))
        == "interactions"
    )
    assert (
        route(decode_event(orjson.dumps(generic(event_type="ticket.updated")), topic="x"))
        == "tickets"
    )
    [record] = events(orjson.dumps(generic(event_type="ticket.created")), input_name="interactions")
    assert record.input == "interactions"


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [50, 100, 300, 1100, 5000])
def test_deeply_nested_bodies_are_refused_like_the_decoder_refuses_them(depth: int) -> None:
    """However deep a body nests, the ingest answers (never a 500): with the decoder's own code
    when the decoder refuses the bytes, and never accepting what cannot be produced."""
    doc = {"id": "d1", "type": "ticket.created", "ticket": {"id": "1"}, "attributes": nested(depth)}
    raw = orjson.dumps(doc) if depth < 250 else _deep_json(depth)
    try:
        decode_event(raw, topic="x")
        refused_by_decoder = None
    except DecodeError as error:
        refused_by_decoder = error.code
    for attempt in (
        lambda: [zendesk_webhook(raw, invocation_id="1")],
        lambda: events(raw),
        lambda: events(b"[" + raw + b"]"),
    ):
        records, refused = _outcome(attempt)
        if refused is None:
            assert refused_by_decoder is None
            assert all(decode_event(r.value, topic="x") == r.event for r in records)
        elif refused_by_decoder is not None and refused.index is None:
            assert refused.body()["error"] == refused_by_decoder


def _outcome(attempt: Callable[[], list[Record]]) -> tuple[list[Record], BadRequest | None]:
    try:
        return attempt(), None
    except BadRequest as refused:
        return [], refused


def _deep_json(depth: int) -> bytes:
    """The same document written out by hand: orjson itself encodes at most 254 levels."""
    head = b'{"id": "d1", "type": "ticket.created", "ticket": {"id": "1"}, "attributes": '
    return head + b'{"a": ' * depth + b'"leaf"' + b"}" * depth + b"}"
