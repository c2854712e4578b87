"""The engine without a broker: records in, a list of published records out (Quix-style sink)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest

from agents.engine import Engine, EngineSettings, Prepared
from agents.outcomes import Inbound, Outbound
from agents.scheduler import Scheduler
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


async def run_records(engine: Engine, records: Sequence[Inbound]) -> list[Inbound]:
    """Run records through the engine as the worker does (by ticket lane); return those
    acknowledged, in acknowledgement order."""
    acknowledged: list[Inbound] = []
    scheduler: Scheduler[Prepared, Inbound] = Scheduler(
        engine.handle, acknowledged.extend, max_in_flight=100, observer=engine.observer
    )
    for record in records:
        item = engine.prepare(record)
        scheduler.admit((record.topic, record.partition), record.offset, item.ticket, item, record)
    await scheduler.wait_idle()
    return acknowledged


async def test_a_matching_event_creates_a_lead_and_publishes_every_step(setup) -> None:  # type: ignore[no-untyped-def]
    """One event: a find and a create, two step outputs, one succeeded run result."""
    engine, gateway, publisher, _ = setup
    await run_records(engine, [inbound(ticket_created("e1", "T1", "ada@example.com"))])
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
    await run_records(engine, [inbound(b'{"id": "e1", "type": ', offset=7)])
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
    await run_records(engine, [inbound(ticket_created("e1", "T1", "ada@example.com"))])
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
    await run_records(engine, [original])
    (retry,) = publisher.on("actionflows.retry.1s")
    del gateway.upsert, gateway.create  # the outage ends
    context = h.parse_retry_headers(retry.headers)
    assert context is not None
    assert context.flow == "create-lead"
    assert context.origin_offset == 3
    await run_records(
        engine,
        [Inbound("actionflows.retry.1s", 0, 0, None, retry.key, retry.value, tuple(retry.headers))],
    )
    assert len(gateway.records["Lead"]) == 1


async def test_events_of_one_ticket_run_in_arrival_order(setup) -> None:  # type: ignore[no-untyped-def]
    """Within a batch, a ticket's events run one after another, in offset order."""
    engine, gateway, publisher, _ = setup
    batch = [
        inbound(ticket_created(f"e{i}", "T1" if i % 2 else "T2", f"p{i}@example.com"), offset=i)
        for i in range(10)
    ]
    await run_records(engine, batch)
    results = [orjson.loads(r.value) for r in publisher.on("actionflows.run-results")]
    for ticket in ("T1", "T2"):
        ids = [r["event_id"] for r in results if r["ticket_id"] == ticket]
        assert ids == sorted(ids, key=lambda e: int(e[1:]))
    assert len(gateway.records["Lead"]) == 10


async def test_a_redelivered_event_does_not_create_a_second_record(setup) -> None:  # type: ignore[no-untyped-def]
    """The ledger makes a redelivery reuse completed steps instead of repeating them."""
    engine, gateway, publisher, _ = setup
    record = inbound(ticket_created("e1", "T1", "ada@example.com"))
    await run_records(engine, [record])
    await run_records(engine, [record])
    assert len(gateway.records["Lead"]) == 1
    second = [orjson.loads(r.value) for r in publisher.on("actionflows.step-outputs")][2:]
    assert {s["status"] for s in second} == {"reused"}


async def test_a_refused_login_pauses_the_run_instead_of_dead_lettering(setup) -> None:  # type: ignore[no-untyped-def]
    """A broken connection is not the event's fault: the run waits and then completes."""
    engine, gateway, publisher, _ = setup
    gateway.failures["query"] = InvalidGrantError(
        "user hasn't approved this consumer", error_code="invalid_grant"
    )
    await run_records(engine, [inbound(ticket_created("e1", "T1", "ada@example.com"))])
    assert engine.stats.pauses == 1
    assert publisher.on("actionflows.dead-letters") == []
    assert len(gateway.records["Lead"]) == 1


class Recording:
    """An observer that writes down what it is told, in order."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []
        self.in_flight_counts: list[int] = []

    def record_in(self, record: Inbound) -> None:
        self.log.append(f"in:{record.offset}")

    def decoded(self, record: Inbound, event: object) -> None:
        pass

    @contextlib.contextmanager
    def run(self, record: Inbound, event: object, plan: object) -> Iterator[None]:
        yield

    def run_finished(self, plan: object, result: object, elapsed_s: float) -> None:
        pass

    def no_match(self, record: Inbound, event: object) -> None:
        self.log.append(f"no_match:{record.offset}")

    def dead_letter(self, record: Inbound, reason: str) -> None:
        self.log.append(f"dead_letter:{reason}")

    def in_flight(self, count: int) -> None:
        self.in_flight_counts.append(count)

    def paused(self, cause: str) -> None:
        self.log.append("paused")

    def resumed(self) -> None:
        self.log.append("resumed")


def other_event(event_id: str) -> bytes:
    return orjson.dumps({"id": event_id, "type": "ticket.solved", "ticket": {"id": "T9"}})


def engine_with(setup, **changes: object) -> Engine:  # type: ignore[no-untyped-def]
    engine, *_ = setup
    return Engine(
        flows=engine.flows,
        catalogue=engine.catalogue,
        ports=changes.pop("ports", engine.ports),  # type: ignore[arg-type]
        publisher=changes.pop("publisher", engine.publisher),  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )


async def test_an_event_no_flow_matches_publishes_a_no_match_result(setup) -> None:  # type: ignore[no-untyped-def]
    """Every record leaves a trace: an unmatched event gets a run result saying no_match, with
    no flow and a run id that is stable for the event, and the observer counts it."""
    _, _, publisher, _ = setup
    observer = Recording()
    engine = engine_with(setup, observer=observer)
    acked = await run_records(engine, [inbound(other_event("e7"), offset=4)])
    (result,) = [orjson.loads(r.value) for r in publisher.on("actionflows.run-results")]
    assert (result["status"], result["flow"], result["event_id"]) == ("no_match", "", "e7")
    assert result["run_id"].startswith("run1-")
    assert "no_match:4" in observer.log
    assert engine.stats.no_match == 1
    assert [r.offset for r in acked] == [4]


async def test_no_match_results_can_be_turned_off_for_high_volume_topics(setup) -> None:  # type: ignore[no-untyped-def]
    """Off: nothing is published for an unmatched event, but it is still counted and
    acknowledged."""
    _, _, publisher, _ = setup
    observer = Recording()
    engine = engine_with(setup, observer=observer, settings=EngineSettings(no_match_results=False))
    acked = await run_records(engine, [inbound(other_event("e7"), offset=4)])
    assert publisher.records == []
    assert "no_match:4" in observer.log
    assert [r.offset for r in acked] == [4]


async def test_a_pause_holds_every_new_run_of_the_worker(setup) -> None:  # type: ignore[no-untyped-def]
    """One run meets a refused login: the worker pauses, and a run of another ticket that
    arrives meanwhile makes no Salesforce call before the pause ends."""
    _, gateway, publisher, _ = setup
    log: list[str] = []
    observer = Recording(log)
    engine = engine_with(setup, observer=observer)
    gateway.failures["query"] = InvalidGrantError("refused", error_code="invalid_grant")
    calls = gateway.calls

    class Logged(list):  # type: ignore[type-arg]
        def append(self, call: tuple[object, ...]) -> None:
            log.append(f"call:{call[0]}")
            super().append(call)

    gateway.calls = Logged(calls)
    acknowledged: list[Inbound] = []
    scheduler: Scheduler[Prepared, Inbound] = Scheduler(
        engine.handle, acknowledged.extend, max_in_flight=10
    )
    second = inbound(ticket_created("e2", "T2", "bob@example.com"), offset=1)

    def admit(record: Inbound) -> None:
        item = engine.prepare(record)
        scheduler.admit(("t", 0), record.offset, item.ticket, item, record)

    original_paused = observer.paused

    def paused(cause: str) -> None:
        original_paused(cause)
        admit(second)  # a new event arrives during the pause

    observer.paused = paused  # type: ignore[method-assign]
    admit(inbound(ticket_created("e1", "T1", "ada@example.com"), offset=0))
    await scheduler.wait_idle()
    pause, resume = log.index("paused"), log.index("resumed")
    assert pause < resume
    between = log[pause:resume]
    assert not [entry for entry in between if entry.startswith("call:")], between
    assert len(gateway.records["Lead"]) == 2
    assert [r.offset for r in acknowledged] == [0, 1]
    assert publisher.on("actionflows.dead-letters") == []


class FlakyLedger(InMemoryLedger):
    """Its sync fails ``failures`` times, then works; counts the syncs."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.syncs = 0

    async def sync(self) -> None:
        self.syncs += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unreachable")


async def test_a_failing_ledger_sync_is_retried_not_dead_lettered(setup) -> None:  # type: ignore[no-untyped-def]
    """After an assignment the ledger must sync before records run; while it fails the worker
    retries with backoff; then the record runs, with no dead letter."""
    _, gateway, publisher, _ = setup
    ledger = FlakyLedger(failures=2)
    engine = engine_with(setup, ports=Ports(gateway=gateway, ledger=ledger, clock=FakeClock()))
    engine.resync()
    await run_records(engine, [inbound(ticket_created("e1", "T1", "ada@example.com"))])
    assert ledger.syncs == 3
    assert publisher.on("actionflows.dead-letters") == []
    (result,) = publisher.on("actionflows.run-results")
    assert orjson.loads(result.value)["status"] == "succeeded"


async def test_a_retry_record_runs_after_a_ledger_sync(setup) -> None:  # type: ignore[no-untyped-def]
    """A record from a retry tier may follow a step another worker just recorded: the engine
    syncs the ledger before running it."""
    _, gateway, _, _ = setup
    ledger = FlakyLedger(failures=0)
    engine = engine_with(setup, ports=Ports(gateway=gateway, ledger=ledger, clock=FakeClock()))
    retry = h.retry_headers(
        h.RetryContext(attempt=1, not_before_ms=0, origin_topic="actionflows.tickets",
                       origin_partition=0, origin_offset=3, flow="create-lead")
    )  # fmt: skip
    value = ticket_created("e1", "T1", "ada@example.com")
    await run_records(
        engine, [Inbound("actionflows.retry.1s", 0, 0, None, b"T1", value, tuple(retry))]
    )
    assert ledger.syncs == 1
    assert len(gateway.records["Lead"]) == 1


class BrokenPublisher(ListPublisher):
    """Raises a defect's exception on its first publish only."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    async def publish(self, records: Sequence[Outbound]) -> None:
        if self.broken:
            self.broken = False
            raise RuntimeError("a bug in publishing")
        await super().publish(records)


async def test_a_defect_in_publishing_becomes_a_dead_letter_for_the_record(setup) -> None:  # type: ignore[no-untyped-def]
    """An unexpected exception while publishing a record's outcomes does not escape: the record
    is dead-lettered at the publish stage, and acknowledged."""
    publisher = BrokenPublisher()
    engine = engine_with(setup, publisher=publisher)
    acked = await run_records(engine, [inbound(ticket_created("e1", "T1", "a@example.com"), 5)])
    (letter,) = publisher.on("actionflows.dead-letters")
    context = h.parse_dead_letter_headers(letter.headers)
    assert (context.stage, context.reason, context.offset) == (
        h.Stage.PUBLISH,
        "publish.engine_error",
        5,
    )
    assert [r.offset for r in acked] == [5]


async def test_the_observer_sees_the_live_in_flight_count(setup) -> None:  # type: ignore[no-untyped-def]
    """in_flight reports the records taken and not finished, up and back to zero."""
    observer = Recording()
    engine = engine_with(setup, observer=observer)
    records = [
        inbound(ticket_created(f"e{i}", f"T{i}", f"p{i}@example.com"), offset=i) for i in range(3)
    ]
    await run_records(engine, records)
    counts = observer.in_flight_counts
    assert counts[:3] == [1, 2, 3]
    assert counts[-1] == 0
