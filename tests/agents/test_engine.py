"""The engine without a broker: records in, a list of published records out (Quix-style sink)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from agents.engine import Engine
from agents.outcomes import Inbound, Outbound
from pipeline.ledger import InMemoryLedger
from pipeline.loader import load_flows
from pipeline.runner import Clock, Ports
from salesforce.errors import InvalidGrantError
from tests.pipeline.catalogue_fakes import FakeRejected, FakeSalesforce, FakeUnavailable
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings

CREATE_LEAD_FLOW = """\
name: create-lead
version: 1
trigger:
  event_types: [ticket.created]
steps:
  - id: find_lead
    action: salesforce.find_record
    object: lead
    inputs: {email: "{{ event.requester.email }}"}
  - id: create_lead
    when: {not: {exists: steps.find_lead.id}}
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}", description: "Ticket {{ event.ticket_id }}"}
    fields: {Email: "{{ event.requester.email }}"}
    policy: {max_attempts: 5, backoff: {initial_s: 0.01, max_s: 0.02}}
"""


class FakeClock(Clock):
    """Time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class ListPublisher:
    def __init__(self) -> None:
        self.records: list[Outbound] = []

    async def publish(self, records: Sequence[Outbound]) -> None:
        self.records.extend(records)

    def on(self, topic: str) -> list[Outbound]:
        return [r for r in self.records if r.topic == topic]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Engine, FakeSalesforce, ListPublisher, Catalogue]:
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    catalogue = Catalogue.build(CatalogueSettings(retry_delays_ms=(1000, 5000)))
    gateway = FakeSalesforce()
    publisher = ListPublisher()
    engine = Engine(
        flows=load_flows(tmp_path),
        catalogue=catalogue,
        ports=Ports(gateway=gateway, ledger=InMemoryLedger(), clock=FakeClock()),
        publisher=publisher,
    )
    return engine, gateway, publisher, catalogue


def _always_failing(error: Exception):  # type: ignore[no-untyped-def]
    async def fail(*args: object, **kwargs: object) -> None:
        raise error

    return fail


def ticket_created(event_id: str, ticket: str, email: str) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": "ticket.created",
            "ticket": {"id": ticket, "subject": "Hi"},
            "requester": {"name": "Ada Lovelace", "email": email},
        }
    )


def inbound(value: bytes, offset: int = 0, topic: str = "actionflows.tickets") -> Inbound:
    return Inbound(topic, 0, offset, 1_800_000_000_000, b"t", value)


async def test_a_matching_event_creates_a_lead_and_publishes_every_step(setup) -> None:  # type: ignore[no-untyped-def]
    """One event: a find and a create, two step outputs, one succeeded run result."""
    engine, gateway, publisher, _ = setup
    await engine.handle_batch([inbound(ticket_created("e1", "T1", "ada@example.com"))])
    lead = gateway.only("Lead")
    assert lead["LastName"] == "Lovelace"
    assert lead["Email"] == "ada@example.com"
    steps = [orjson.loads(r.value) for r in publisher.on("actionflows.step-outputs")]
    assert [(s["step"], s["status"]) for s in steps] == [
        ("find_lead", "succeeded"),
        ("create_lead", "succeeded"),
    ]
    assert steps[1]["inputs"]["name"] == "Ada Lovelace"
    (result,) = [orjson.loads(r.value) for r in publisher.on("actionflows.run-results")]
    assert result["status"] == "succeeded"
    assert result["event_id"] == "e1"
    assert publisher.on("actionflows.dead-letters") == []


async def test_malformed_json_is_dead_lettered_unchanged_with_a_reason(setup) -> None:  # type: ignore[no-untyped-def]
    """A payload that is not JSON reaches the dead-letter topic byte for byte, with context."""
    engine, _, publisher, _ = setup
    await engine.handle_batch([inbound(b'{"id": "e1", "type": ', offset=7)])
    (letter,) = publisher.on("actionflows.dead-letters")
    assert letter.value == b'{"id": "e1", "type": '
    context = h.parse_dead_letter_headers(letter.headers)
    assert context.stage == h.Stage.DECODE
    assert context.offset == 7
    assert context.reason == "decode.malformed_json"


async def test_a_permanent_salesforce_error_is_dead_lettered_with_step_context(setup) -> None:  # type: ignore[no-untyped-def]
    """A validation error is not retried: the record goes to the dead letters, naming the step."""
    engine, gateway, publisher, _ = setup
    gateway.failures["create"] = FakeRejected(
        "bad value", error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", fields=["Email"]
    )
    await engine.handle_batch([inbound(ticket_created("e1", "T1", "ada@example.com"))])
    (letter,) = publisher.on("actionflows.dead-letters")
    context = h.parse_dead_letter_headers(letter.headers)
    assert (context.flow, context.step, context.stage) == (
        "create-lead",
        "create_lead",
        h.Stage.STEP,
    )
    assert context.salesforce_error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert context.salesforce_fields == ("Email",)
    assert publisher.on("actionflows.retry.1s") == []


async def test_a_transient_failure_goes_to_a_retry_topic_and_succeeds_from_there(setup) -> None:  # type: ignore[no-untyped-def]
    """Transient failures outliving in-process attempts park the event; the retry completes it."""
    engine, gateway, publisher, _ = setup
    outage = FakeUnavailable("down", error_code="SERVER_UNAVAILABLE")
    gateway.upsert = gateway.create = _always_failing(outage)  # type: ignore[method-assign]
    original = inbound(ticket_created("e1", "T1", "ada@example.com"), offset=3)
    await engine.handle_batch([original])
    (retry,) = publisher.on("actionflows.retry.1s")
    del gateway.upsert, gateway.create  # the outage ends
    context = h.parse_retry_headers(retry.headers)
    assert context is not None
    assert context.flow == "create-lead"
    assert context.origin_offset == 3
    await engine.handle_batch(
        [Inbound("actionflows.retry.1s", 0, 0, None, retry.key, retry.value, tuple(retry.headers))]
    )
    assert len(gateway.records["Lead"]) == 1


async def test_events_of_one_ticket_run_in_arrival_order(setup) -> None:  # type: ignore[no-untyped-def]
    """Within a batch, a ticket's events run one after another, in offset order."""
    engine, gateway, publisher, _ = setup
    batch = [
        inbound(ticket_created(f"e{i}", "T1" if i % 2 else "T2", f"p{i}@example.com"), offset=i)
        for i in range(10)
    ]
    await engine.handle_batch(batch)
    results = [orjson.loads(r.value) for r in publisher.on("actionflows.run-results")]
    for ticket in ("T1", "T2"):
        ids = [r["event_id"] for r in results if r["ticket_id"] == ticket]
        assert ids == sorted(ids, key=lambda e: int(e[1:]))
    assert len(gateway.records["Lead"]) == 10


async def test_a_redelivered_event_does_not_create_a_second_record(setup) -> None:  # type: ignore[no-untyped-def]
    """The ledger makes a redelivery reuse completed steps instead of repeating them."""
    engine, gateway, publisher, _ = setup
    record = inbound(ticket_created("e1", "T1", "ada@example.com"))
    await engine.handle_batch([record])
    await engine.handle_batch([record])
    assert len(gateway.records["Lead"]) == 1
    second = [orjson.loads(r.value) for r in publisher.on("actionflows.step-outputs")][2:]
    assert {s["status"] for s in second} == {"reused"}


async def test_a_refused_login_pauses_the_run_instead_of_dead_lettering(setup) -> None:  # type: ignore[no-untyped-def]
    """A broken connection is not the event's fault: the run waits and then completes."""
    engine, gateway, publisher, _ = setup
    gateway.failures["query"] = InvalidGrantError(
        "user hasn't approved this consumer", error_code="invalid_grant"
    )
    await engine.handle_batch([inbound(ticket_created("e1", "T1", "ada@example.com"))])
    assert engine.stats.pauses == 1
    assert publisher.on("actionflows.dead-letters") == []
    assert len(gateway.records["Lead"]) == 1
