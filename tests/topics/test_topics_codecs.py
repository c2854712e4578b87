"""Decoding Zendesk webhooks and generic envelopes into Events, and encoding them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import Event, Interaction, Organization, Person
from topics.codecs import decode_event, encode_event
from topics.errors import DecodeError, InvalidField, UnknownEventType
from topics.zendesk import ZENDESK_TICKET_EVENT_TYPES

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TOPIC = "actionflows.tickets"


def zendesk(event_type: str = "ticket.created", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": f"zen:event-type:{event_type}",
        "account_id": 88888888,
        "id": "01HNXXXX-CTEXAMPLE",
        "time": "2024-04-17T17:18:10Z",
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:ticket:35436",
        "detail": {
            "id": "35436",
            "status": "Open",
            "priority": "HIGH",
            "via": {"channel": "web"},
            "requester_id": "501",
            "organization_id": "601",
            "tags": ["vip"],
            "description": "Printer on fire",
        },
        "event": {"current": {"status": "Open"}, "meta": {"sequence": {"id": "s1", "position": 1}}},
    }
    doc.update(overrides)
    return doc


def decode(doc: object) -> Event:
    return decode_event(orjson.dumps(doc), topic=TOPIC)


def test_zendesk_ticket_created_maps_onto_the_event() -> None:
    """Type, ids, time, ticket fields and change come from the documented places."""
    event = decode(zendesk())
    assert (event.id, event.type, event.ticket_id, event.source) == (
        "01HNXXXX-CTEXAMPLE",
        "ticket.created",
        "35436",
        "zendesk",
    )
    assert event.time == "2024-04-17T17:18:10Z"
    assert event.ticket["status"] == "open"
    assert event.ticket["priority"] == "high"
    assert event.ticket["tags"] == ["vip"]
    assert event.ticket["change"] == {"current": {"status": "open"}}
    assert event.interaction == Interaction(channel="web", body="Printer on fire")
    assert event.attributes["zendesk"] == {
        "account_id": 88888888,
        "event_version": "2022-11-06",
        "sequence": {"id": "s1", "position": 1},
    }


def test_zendesk_without_enrichment_has_only_ids() -> None:
    """Zendesk sends ids, so requester and organization carry just those."""
    event = decode(zendesk())
    assert event.requester == Person(id="501")
    assert event.organization == Organization(id="601")


def test_zendesk_top_level_enrichment_wins() -> None:
    """A producer-added top-level requester fills name, email and phone."""
    event = decode(zendesk(requester={"name": "Ann", "email": "ann@example.com", "phone": "+1"}))
    assert event.requester == Person(id="501", name="Ann", email="ann@example.com", phone="+1")


def test_zendesk_enrichment_inside_detail_is_read_and_not_copied_to_ticket() -> None:
    """detail.requester / detail.organization enrich the people, not the ticket mapping."""
    doc = zendesk()
    doc["detail"]["requester"] = {"id": "501", "email": "ann@example.com"}
    doc["detail"]["organization"] = {"name": "Acme"}
    event = decode(doc)
    assert event.requester.email == "ann@example.com"
    assert event.organization == Organization(id="601", name="Acme")
    assert "requester" not in event.ticket
    assert "organization" not in event.ticket


def test_zendesk_comment_becomes_the_interaction_body() -> None:
    """ticket.comment_added puts event.comment.body in the interaction and ticket.comment."""
    comment = {"id": "9", "body": "Still broken", "is_public": True}
    event = decode(zendesk("ticket.comment_added", event={"comment": comment}))
    assert event.interaction.body == "Still broken"
    assert event.ticket["comment"] == comment
    assert "change" not in event.ticket


def test_zendesk_scalar_change_is_kept_and_lower_cased() -> None:
    """status_changed carries scalar current/previous values, lower-cased like ticket.status."""
    event = decode(
        zendesk("ticket.status_changed", event={"current": "SOLVED", "previous": "OPEN"})
    )
    assert event.ticket["change"] == {"current": "solved", "previous": "open"}


def test_zendesk_other_scalar_changes_are_untouched() -> None:
    """Only status and priority values are lower-cased; a subject change keeps its case."""
    event = decode(
        zendesk("ticket.subject_changed", event={"current": "New Title", "previous": "Old"})
    )
    assert event.ticket["change"] == {"current": "New Title", "previous": "Old"}


def test_zendesk_ticket_id_from_subject_when_detail_has_none() -> None:
    """Without detail.id the zen:ticket:<id> subject names the ticket."""
    doc = zendesk()
    del doc["detail"]["id"]
    assert decode(doc).ticket_id == "35436"


def test_zendesk_subject_and_detail_must_agree() -> None:
    """A subject naming another ticket than detail.id is rejected."""
    with pytest.raises(InvalidField, match="disagrees") as info:
        decode(zendesk(subject="zen:ticket:1"))
    assert info.value.path == "$.subject"


@pytest.mark.parametrize("event_type", sorted(ZENDESK_TICKET_EVENT_TYPES))
def test_every_known_zendesk_ticket_type_decodes(event_type: str) -> None:
    """Each listed ticket event type is accepted and normalised without the prefix."""
    assert decode(zendesk(event_type)).type == event_type


def test_unknown_zendesk_types_are_refused() -> None:
    """Non-ticket and unlisted Zendesk types raise UnknownEventType."""
    with pytest.raises(UnknownEventType, match="not a Zendesk ticket event"):
        decode(zendesk("user.created"))
    with pytest.raises(UnknownEventType, match="unknown type"):
        decode(zendesk("ticket.teleported"))


def test_generic_envelope_full() -> None:
    """Every documented envelope field lands on the Event."""
    event = decode(
        {
            "specversion": "1.0",
            "id": 7,
            "type": "interaction.call",
            "source": "aircall",
            "time": "2026-11-25T12:00:00Z",
            "ticket": {"id": 42, "subject": "Call", "custom": {"x": 1}},
            "requester": {"id": 3, "name": "Bo", "email": "bo@example.com", "phone": "+33"},
            "organization": {"id": "o1", "name": "Org"},
            "interaction": {"channel": "voice", "body": "hello"},
            "attributes": {"ai_lead_score": 87},
        }
    )
    assert event == Event(
        id="7",
        type="interaction.call",
        ticket_id="42",
        source="aircall",
        time="2026-11-25T12:00:00Z",
        ticket={"id": "42", "subject": "Call", "custom": {"x": 1}},
        requester=Person(id="3", name="Bo", email="bo@example.com", phone="+33"),
        organization=Organization(id="o1", name="Org"),
        interaction=Interaction(channel="voice", body="hello"),
        attributes={"ai_lead_score": 87},
    )


def test_generic_envelope_minimal_with_flat_ticket_id() -> None:
    """id, type and ticket_id are enough; source defaults to generic."""
    event = decode({"id": "e1", "type": "ticket.created", "ticket_id": "9"})
    assert event == Event(id="e1", type="ticket.created", ticket_id="9", ticket={"id": "9"})


def test_generic_unknown_top_level_fields_are_ignored() -> None:
    """Extra top-level keys and extra person keys do not fail and do not leak in."""
    event = decode(
        {
            "id": "e1",
            "type": "ticket.created",
            "ticket_id": "9",
            "x-vendor": {"a": 1},
            "requester": {"email": "a@b.c", "twitter": "@a"},
        }
    )
    assert event.requester == Person(email="a@b.c")
    assert "x-vendor" not in event.attributes


def test_decode_errors_carry_the_topic() -> None:
    """The topic passed in is recorded on the error for the dead-letter context."""
    with pytest.raises(DecodeError) as info:
        decode_event(b"{", topic="actionflows.interactions")
    assert info.value.topic == "actionflows.interactions"
    assert not info.value.retriable


def _sample_lines(name: str) -> list[bytes]:
    return [line for line in (SAMPLES / name).read_bytes().splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["zendesk.jsonl", "generic.jsonl"])
def test_every_sample_event_decodes(name: str) -> None:
    """The demo's sample events are all valid."""
    lines = _sample_lines(name)
    assert lines
    for line in lines:
        assert decode_event(line, topic=TOPIC).id


MALFORMED_SAMPLE_CODES = [
    "missing_field",
    "malformed_json",
    "unknown_event_type",
    "unknown_event_type",
    "invalid_field",
    "missing_field",
    "invalid_field",
    "invalid_field",
    "invalid_field",
    "invalid_field",
]


def test_every_malformed_sample_is_rejected_with_its_documented_code() -> None:
    """Each line of samples/malformed.jsonl fails with the code samples/README.md gives it."""
    codes = []
    for line in _sample_lines("malformed.jsonl"):
        with pytest.raises(DecodeError) as info:
            decode_event(line, topic=TOPIC)
        codes.append(info.value.code)
    assert codes == MALFORMED_SAMPLE_CODES


def test_samples_cover_the_demo_scenarios() -> None:
    """Unknown requester, known contact, high lead score and a case open/update pair exist."""
    events = [
        decode_event(line, topic=TOPIC)
        for name in ("zendesk.jsonl", "generic.jsonl")
        for line in _sample_lines(name)
    ]
    assert any(e.requester.email and e.requester.email.startswith("nora.") for e in events)
    assert sum(e.requester.email == "jane.doe@acme.example" for e in events) >= 3
    assert any(int(e.attributes.get("ai_lead_score", 0)) >= 90 for e in events)
    c1004 = [e.type for e in events if e.ticket_id == "C-1004"]
    assert c1004 == ["ticket.created", "ticket.updated"]


# --- round trip -------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20)
_ident = _text.filter(lambda s: s.strip() != "")
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_opt = st.none() | _text
_person = st.builds(Person, id=st.none() | _ident, name=_opt, email=_opt, phone=_opt)
_type = st.from_regex(r"(ticket|interaction)(\.[a-z0-9_]{1,10}){1,2}", fullmatch=True)


@st.composite
def events(draw: st.DrawFn) -> Event:
    ticket_id = draw(_ident)
    extra = draw(
        st.dictionaries(
            st.text(max_size=8).filter(
                lambda k: k not in {"id", "subject", "status", "priority", "tags"}
            ),
            _json,
            max_size=4,
        )
    )
    known = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "subject": _text,
                "status": _text,
                "priority": _text,
                "tags": st.lists(_text, max_size=3),
            },
        )
    )
    return Event(
        id=draw(_ident),
        type=draw(_type),
        ticket_id=ticket_id,
        source=draw(st.sampled_from(["generic", "zendesk", "freshdesk"])),
        time=draw(_opt),
        ticket={**extra, **known, "id": ticket_id},
        requester=draw(_person),
        organization=draw(st.builds(Organization, id=st.none() | _ident, name=_opt)),
        interaction=draw(st.builds(Interaction, channel=_opt, body=_opt)),
        attributes=draw(st.dictionaries(st.text(max_size=8), _json, max_size=4)),
    )


@settings(max_examples=300)
@given(events())
def test_decode_inverts_encode(event: Event) -> None:
    """decode_event(encode_event(e)) == e for every canonical event."""
    assert decode_event(encode_event(event), topic=TOPIC) == event


def test_zendesk_events_survive_re_encoding() -> None:
    """A decoded Zendesk event re-encoded as an envelope decodes to the same event (replay)."""
    for line in _sample_lines("zendesk.jsonl"):
        event = decode_event(line, topic=TOPIC)
        assert decode_event(encode_event(event), topic=TOPIC) == event
