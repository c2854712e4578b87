"""The dry run plans an event against the flows without writing anything. No broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.ops.dry_run import DryRunner, DryRunTally
from pipeline.events import Event, Person
from pipeline.ledger import InMemoryLedger, run_key
from pipeline.loader import load_flows
from pipeline.runner import Ports
from tests.agents.test_engine import CREATE_LEAD_FLOW
from tests.pipeline.catalogue_fakes import FakeSalesforce
from topics import headers as h
from topics.catalogue import Catalogue

NOTE_FLOW = """\
name: note-on-call
version: 2
trigger:
  event_types: [interaction.*]
steps:
  - id: open_case
    action: salesforce.create_record
    object: case
    inputs: {description: "Call on {{ event.ticket_id }}"}
"""


@pytest.fixture
def runner(tmp_path: Path) -> tuple[DryRunner, FakeSalesforce, InMemoryLedger]:
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    (tmp_path / "note.yaml").write_text(NOTE_FLOW)
    gateway, ledger = FakeSalesforce(), InMemoryLedger()
    flows = load_flows(tmp_path, external_id_fields={"lead": "Actionflows_Key__c"})
    return (
        DryRunner(flows, Catalogue.build(), Ports(gateway=gateway, ledger=ledger)),
        gateway,
        ledger,
    )


def ada(kind: str = "ticket.created") -> Event:
    return Event(id="e1", type=kind, ticket_id="T1",
                 requester=Person(name="Ada Lovelace", email="ada@example.com"))  # fmt: skip


async def test_a_dry_run_shows_the_write_and_makes_none(runner) -> None:  # type: ignore[no-untyped-def]
    """The find runs; the create is described (object, action, fields) but not sent."""
    dry, gateway, ledger = runner
    plan = await dry.plan(0, 5, ada(), "actionflows.tickets", ())
    (flow,) = plan.flows
    assert (flow.flow, flow.status) == ("create-lead", "succeeded")
    (write,) = flow.writes
    assert (write.action, write.object, write.step) == (
        "salesforce.create_record",
        "lead",
        "create_lead",
    )
    assert write.fields == {"Email": "ada@example.com"}
    assert write.shown()["Email"] == "***"
    assert write.shown(raw=True)["Email"] == "ada@example.com"
    assert gateway.records.get("Lead", {}) == {}
    assert not [m for m in gateway.methods() if m != "query"]
    assert ledger.records(run_key("e1", "create-lead", 1)) == {}  # the find is not recorded


async def test_a_dry_run_routes_like_the_engine(runner) -> None:  # type: ignore[no-untyped-def]
    """Triggers pick the flows; a record with retry headers naming a flow runs only that one."""
    dry, _, _ = runner
    call = await dry.plan(0, 1, ada("interaction.call"), "actionflows.interactions", ())
    assert [f.flow for f in call.flows] == ["note-on-call"]
    retry = h.retry_headers(h.RetryContext(0, 0, "actionflows.tickets", 0, 1, "note-on-call"))
    again = await dry.plan(0, 2, ada(), "actionflows.tickets", retry)
    assert [f.flow for f in again.flows] == ["note-on-call"]


async def test_the_tally_counts_events_runs_and_writes_by_action(runner) -> None:  # type: ignore[no-untyped-def]
    """The summary: events, undecodable ones, runs, and writes per action and object."""
    dry, _, _ = runner
    tally = DryRunTally()
    tally.add(await dry.plan(0, 1, ada(), "actionflows.tickets", ()))
    tally.add(await dry.plan(0, 2, ada("interaction.chat"), "actionflows.interactions", ()))
    assert (tally.events, tally.runs, tally.failed_runs) == (2, 2, 0)
    assert tally.writes == {"create_record lead": 1, "create_record case": 1}
