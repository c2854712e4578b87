"""The result does not depend on how events interleave.

The example flows (one lead per person, notes appended to a contact) run many events at once
on two workers (two gateways over one org), with hypothesis choosing which Salesforce call goes
next and how much time passes, call by call; some events are delivered twice. Every
interleaving must end in the same org: one lead per person, every note on the contact exactly
once, no run dead-lettered. Each mechanism also has a control: a fixed interleaving where,
without it, the org ends up wrong.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.actions import OBJECTS
from pipeline.catalogue.executors import append_marker
from pipeline.events import Event, Interaction, Person
from pipeline.ledger import InMemoryLedger, business_key, idempotency_key
from pipeline.loader import compile_text, load_flows
from pipeline.plan import Plan
from pipeline.result import RunResult, RunStatus
from pipeline.runner import Ports, run
from salesforce.consistency import ConsistentGateway
from tests.pipeline.flow_fakes import FakeClock, FixedRandom
from tests.pipeline.interleaving import InterleavedOrg, Scheduler

ROOT = Path(__file__).resolve().parents[2]
KEY = "Actionflows_Key__c"
FLOWS = load_flows(ROOT / "flows", external_id_fields=dict.fromkeys(OBJECTS, KEY))
CREATE_LEAD = FLOWS.get("create-lead-for-unknown-requester")
ADD_NOTE = FLOWS.get("add-note-after-interaction")
assert CREATE_LEAD is not None
assert ADD_NOTE is not None
ADA = Person(name="Ada Lovelace", email="ada@example.com")
PEOPLE = (Person(name="Nora Quist", email="nora@example.com"),
          Person(name="Ola Berg", email="Ola.Berg@Example.com"))  # fmt: skip


def ticket(n: int, person: Person) -> Event:
    return Event(id=f"t{n}", type="ticket.created", ticket_id=f"T{n}",
                 ticket={"subject": f"Question {n}"}, requester=person)  # fmt: skip


def interaction(n: int) -> Event:
    return Event(id=f"i{n}", type="interaction.chat", ticket_id=f"I{n}", requester=ADA,
                 time=f"2026-01-01T09:00:0{n}Z",
                 interaction=Interaction(channel="chat", body=f"note {n}"))  # fmt: skip


TICKETS = [(CREATE_LEAD, ticket(n, PEOPLE[n % 2])) for n in range(4)]  # two per person
NOTES = [(ADD_NOTE, interaction(n)) for n in range(3)]


def note_line(event: Event) -> str:
    key = idempotency_key(event.id, "add-note-after-interaction", "add_note")
    return f"[{event.time}] chat (ticket {event.ticket_id}): note {event.id[1:]} " + append_marker(
        key
    )


class World:
    """One org, a gateway per worker, one shared ledger, and the scheduler deciding the order."""

    def __init__(
        self,
        pick: Callable[[int], int],
        advance: Callable[[], float],
        *,
        workers: int = 2,
        **org_options: object,
    ) -> None:
        self.scheduler = Scheduler(pick, advance)
        self.org = InterleavedOrg(self.scheduler, **org_options)  # type: ignore[arg-type]
        self.contact = self.org.add("Contact", LastName="Lovelace", Email=ADA.email,
                                    Description="VIP")  # fmt: skip
        self.gateways = [
            ConsistentGateway(
                self.org, self.org, sleep=self.scheduler.sleep, monotonic=self.scheduler.monotonic
            )
            for _ in range(workers)
        ]
        self.ledger = InMemoryLedger()

    def run(self, runs: list[tuple[Plan, Event, int]]) -> list[RunResult]:
        def ports(worker: int) -> Ports:
            return Ports(gateway=self.gateways[worker], ledger=self.ledger, clock=FakeClock(),
                         rng=FixedRandom())  # fmt: skip

        async def all_runs() -> list[RunResult]:
            return await self.scheduler.run([run(p, e, ports(w)) for p, e, w in runs])

        return asyncio.run(all_runs())

    def leads(self) -> list[dict[str, object]]:
        return list(self.org.records.get("Lead", {}).values())

    def notes(self) -> list[str]:
        return str(self.org.record("Contact", self.contact)["Description"]).split("\n")


def fifo(n: int) -> int:
    return 0


def still() -> float:
    return 0.0


def assert_the_one_outcome(world: World, results: list[RunResult]) -> None:
    """What every interleaving must end in."""
    assert [r.status for r in results] == [RunStatus.SUCCEEDED] * len(results), [
        (r.flow, r.event_id, r.reason) for r in results if r.status != RunStatus.SUCCEEDED
    ]
    leads = {str(lead["Email"]).lower(): lead for lead in world.leads()}
    assert len(world.leads()) == len(leads) == len(PEOPLE), world.leads()
    for person in PEOPLE:
        lead = leads[person.email.lower()]
        assert lead[KEY] == business_key("lead", person.email.lower())
        assert lead["LastName"] == person.name.split()[-1]
        tickets = {f"Zendesk ticket {e.ticket_id}: {e.ticket['subject']}" for _, e in TICKETS
                   if e.requester == person}  # fmt: skip
        assert lead["Description"] in tickets  # the ticket that created it: the first
    assert sorted(world.notes()) == sorted(["VIP", *(note_line(e) for _, e in NOTES)])


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_every_interleaving_ends_in_the_same_org(data: st.DataObject) -> None:
    """Four tickets from two new people and three notes for one contact, on two workers, some
    delivered twice, in any order of calls and with any pauses between them: one lead per
    person, each note once, nothing dead-lettered."""
    events = [*TICKETS, *NOTES]
    again = data.draw(st.lists(st.sampled_from(events), max_size=3), label="redelivered")
    workers = data.draw(
        st.lists(st.integers(0, 1), min_size=len(events) + len(again),
                 max_size=len(events) + len(again)), label="worker of each delivery")  # fmt: skip
    pauses = st.sampled_from([0.0, 0.0, 0.0, 0.2, 0.6, 1.1])
    world = World(lambda n: data.draw(st.integers(0, n - 1)), lambda: data.draw(pauses))
    runs = [(plan, event, worker) for (plan, event), worker in
            zip([*events, *again], workers, strict=True)]  # fmt: skip
    results = world.run(runs)
    assert_the_one_outcome(world, results)


# --- controls: a fixed interleaving where, without the mechanism, the org ends up wrong -----

TWO_NOTES = [(ADD_NOTE, interaction(1), 0), (ADD_NOTE, interaction(2), 1)]


def test_two_workers_appending_at_once_keep_both_notes() -> None:
    """Both workers read the contact, then both write: the second write is refused (412),
    read again and added. Control: without If-Unmodified-Since, the first note is lost."""
    world = World(fifo, still)
    world.run(TWO_NOTES)
    assert world.org.refused >= 1
    assert len(world.notes()) == 3
    control = World(fifo, still, check_precondition=False)
    control.run(TWO_NOTES)
    assert len(control.notes()) == 2  # VIP and one note: the other was overwritten


def test_a_write_in_the_same_second_is_not_lost() -> None:
    """The contact changed in this very second and time stands still between calls: a
    precondition to the second cannot see a write made in it, so each writer first waits for
    the server's clock to leave that second. Control: a server Date running an hour ahead
    hides the same second, and one note is lost despite If-Unmodified-Since."""
    world = World(fifo, still)
    world.run(TWO_NOTES)
    assert len(world.notes()) == 3
    assert any(call.startswith("sleep") for call in world.scheduler.order)
    control = World(fifo, still, date_ahead_s=3600)
    control.run(TWO_NOTES)
    assert len(control.notes()) == 2
    assert control.org.refused == 0  # the precondition passed: same second


def test_one_worker_never_races_itself_on_a_record() -> None:
    """In one worker, two notes for one contact go one after the other: no write is refused.
    Control: two gateways (no shared lock) on the same schedule race, and one is refused."""
    one = World(fifo, still, workers=1)
    one.run([(ADD_NOTE, interaction(1), 0), (ADD_NOTE, interaction(2), 0)])
    assert (one.org.refused, len(one.notes())) == (0, 3)
    two = World(fifo, still)
    two.run(TWO_NOTES)
    assert two.org.refused >= 1


def test_a_redelivered_note_is_added_once() -> None:
    """The same event twice, at once on two workers, then again later: one note."""
    world = World(fifo, still)
    twice = [(ADD_NOTE, interaction(1), 0), (ADD_NOTE, interaction(1), 1)]
    world.run(twice)
    world.ledger = InMemoryLedger()  # even with the ledger lost, the marker says it is there
    world.run(twice[:1])
    assert world.notes() == ["VIP", note_line(interaction(1))]


WITHOUT_UNIQUE_BY = compile_text(
    (ROOT / "flows" / "10-create-lead-for-unknown-requester.yaml")
    .read_text()
    .replace(
        '    unique_by: "{{ event.requester.email | trim | lower }}"   # one lead per email\n', ""
    ),
    external_id_fields=dict.fromkeys(OBJECTS, KEY),
)


def test_two_tickets_from_one_new_person_on_two_workers_make_one_lead() -> None:
    """Both finds see no lead, both create: the second create is refused as a duplicate, finds
    the lead by the person's key and succeeds with it. Control: keyed by the event instead
    (no unique_by), the second create is a dead letter."""
    pair = [(CREATE_LEAD, ticket(1, PEOPLE[0]), 0), (CREATE_LEAD, ticket(3, PEOPLE[0]), 1)]
    world = World(fifo, still)
    results = world.run(pair)
    assert [r.status for r in results] == [RunStatus.SUCCEEDED] * 2
    assert len(world.leads()) == 1
    assert {r.outputs["create_lead"]["id"] for r in results} == {world.leads()[0]["Id"]}
    assert WITHOUT_UNIQUE_BY.steps[2].unique_by is None
    control = World(fifo, still)
    results = control.run([(WITHOUT_UNIQUE_BY, e, w) for _, e, w in pair])
    assert sorted(r.status for r in results) == [RunStatus.DEAD_LETTER, RunStatus.SUCCEEDED]


def test_one_worker_single_flights_a_key() -> None:
    """In one worker the second create for a person waits for the first and makes no call.
    Control: on two workers the second create is sent, and refused."""
    pair = [(CREATE_LEAD, ticket(1, PEOPLE[0]), 0), (CREATE_LEAD, ticket(3, PEOPLE[0]), 0)]
    one = World(fifo, still, workers=1)
    one.run(pair)
    assert [c[0] for c in one.org.calls].count("create") == 1
    two = World(fifo, still)
    two.run([(p, e, n) for (p, e, _), n in zip(pair, itertools.count(), strict=False)])
    assert [c[0] for c in two.org.calls].count("create") == 2
    assert len(one.leads()) == len(two.leads()) == 1
