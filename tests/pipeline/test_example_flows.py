"""The demo flows in flows/: valid against the real catalogue, and doing what they promise
when run by the real executors against an in-memory Salesforce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.actions import OBJECTS
from pipeline.errors import FlowLoadError
from pipeline.events import Interaction, Organization, Person
from pipeline.ledger import InMemoryLedger
from pipeline.loader import compile_text, load_flows, validate_directory
from pipeline.plan import FlowSet
from pipeline.result import RunResult, RunStatus
from pipeline.runner import Ports, run
from tests.pipeline.catalogue_fakes import FakeSalesforce, flow_gateway
from tests.pipeline.flow_fakes import FakeClock, FixedRandom, make_event

FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(FLOWS, external_id_fields=dict.fromkeys(OBJECTS, "Actionflows_Key__c"))


def test_every_demo_flow_validates_against_the_real_catalogue() -> None:
    """flows/ loads with no error: the demo is always runnable."""
    assert validate_directory(FLOWS) == []
    assert len(load_flows(FLOWS, external_id_fields={"lead": "K__c", "case": "K__c"})) >= 6


def test_unique_by_needs_an_external_id_field_to_hold_the_key() -> None:
    """A worker whose configuration has no external-id field for an object refuses, at load
    time, a flow that creates it by a business key, naming the step."""
    with pytest.raises(FlowLoadError) as refused:
        load_flows(FLOWS, external_id_fields={"lead": "K__c"})
    (error,) = refused.value.errors
    assert error.file.endswith("20-open-case-from-ticket.yaml")
    assert error.path == "steps[1].unique_by"
    assert "needs an external-id field on case" in error.message


async def run_flow(
    flows: FlowSet,
    name: str,
    org: FakeSalesforce,
    ledger: InMemoryLedger | None = None,
    **event: Any,
) -> RunResult:
    plan = flows.get(name)
    assert plan is not None
    ports = Ports(
        gateway=flow_gateway(org),
        ledger=ledger if ledger is not None else InMemoryLedger(),
        clock=FakeClock(),
        rng=FixedRandom(),
    )
    return await run(plan, make_event(**event), ports)


async def test_unknown_requester_becomes_one_lead_even_when_redelivered(flows: FlowSet) -> None:
    """A new requester gets a lead (created by their email's key); a redelivery adds nothing,
    a crash before the ledger recorded the create reads again and finds the lead, and the next
    ticket from the same person finds the lead instead of creating one."""
    org, ledger = FakeSalesforce(), InMemoryLedger()
    first = await run_flow(flows, "create-lead-for-unknown-requester", org, ledger)
    assert first.status is RunStatus.SUCCEEDED, first.reason
    lead = org.only("Lead")
    assert (lead["FirstName"], lead["LastName"], lead["Email"], lead["LeadSource"]) == (
        "Ada",
        "Lovelace",
        "ada@example.com",
        "Support",
    )
    assert lead["Company"] == "Analytical Engines Ltd"
    again = await run_flow(flows, "create-lead-for-unknown-requester", org, ledger)
    assert [s.status for s in again.steps] == ["reused"] * 3
    # A crash after Salesforce wrote the lead but before the ledger recorded it: the run resumes
    # on what the org holds now, so the finds run again and find the lead.
    crashed = InMemoryLedger()
    for step_id, record in ledger.records(first.run_key).items():
        if step_id != "create_lead":
            await crashed.put(first.run_key, step_id, record)
    retried = await run_flow(flows, "create-lead-for-unknown-requester", org, crashed)
    assert [s.status for s in retried.steps] == ["succeeded", "succeeded", "skipped"]
    assert retried.outputs["find_lead"]["id"] == lead["Id"]
    assert org.methods().count("create") == 1
    org.only("Lead")
    later = await run_flow(flows, "create-lead-for-unknown-requester", org, id="evt-2")
    assert [s.status for s in later.steps] == ["succeeded", "succeeded", "skipped"]
    assert later.published["lead_id"] == lead["Id"]
    org.only("Lead")


async def test_known_contact_gets_a_note_appended(flows: FlowSet) -> None:
    """An interaction appends a line to the contact's description, keeping what was there."""
    org = FakeSalesforce()
    contact = org.add(
        "Contact", LastName="Lovelace", Email="ada@example.com", Description="VIP since 1843"
    )
    result = await run_flow(
        flows,
        "add-note-after-interaction",
        org,
        type="interaction.call",
        time="2026-11-25T11:00:00Z",
        interaction=Interaction(channel="voice", body=" Asked for a demo. "),
    )
    assert result.status is RunStatus.SUCCEEDED, result.reason
    note = "[2026-11-25T11:00:00Z] voice (ticket 4242): Asked for a demo."
    description = org.record("Contact", contact)["Description"]
    assert description.startswith(f"VIP since 1843\n{note} [af:")
    assert description.count("\n") == 1


async def test_lookup_publishes_contact_details_for_notifiers(flows: FlowSet) -> None:
    """A VIP ticket publishes the contact and account found, and writes nothing."""
    org = FakeSalesforce()
    account = org.add("Account", Name="Analytical Engines Ltd")
    contact = org.add(
        "Contact",
        LastName="Lovelace",
        FirstName="Ada",
        Email="ada@example.com",
        Title="Countess",
        AccountId=account,
    )
    plans = flows.match(make_event(), "tickets")
    assert "lookup-contact-for-notification" in [plan.name for plan in plans]
    result = await run_flow(flows, "lookup-contact-for-notification", org)
    assert result.published["contact"]["id"] == contact
    assert result.published["contact"]["title"] == "Countess"
    assert result.published["account"] == {"id": account, "name": "Analytical Engines Ltd"}
    assert set(org.methods()) == {"query"}


async def test_hot_lead_is_converted_into_the_existing_account(flows: FlowSet) -> None:
    """Score ≥ 80: the lead converts, merged into the account named like the organization."""
    org = FakeSalesforce()
    lead = org.add(
        "Lead", LastName="Lovelace", Company="AE", Email="ada@example.com", IsConverted=False
    )
    account = org.add("Account", Name="Analytical Engines Ltd")
    cold = make_event(attributes={"ai_lead_score": 42})
    assert "convert-high-scoring-lead" not in [plan.name for plan in flows.match(cold)]
    result = await run_flow(
        flows, "convert-high-scoring-lead", org, attributes={"ai_lead_score": 87}
    )
    assert result.status is RunStatus.SUCCEEDED, result.reason
    assert org.record("Lead", lead)["ConvertedAccountId"] == account
    assert result.published["opportunity_id"] == org.only("Opportunity")["Id"]


async def test_case_opens_then_follows_the_ticket_status(flows: FlowSet) -> None:
    """A new ticket opens a case; a status change (with the case id written back) closes it."""
    org = FakeSalesforce()
    opened = await run_flow(
        flows,
        "open-case-from-ticket",
        org,
        requester=Person(email="nobody@example.com"),
        organization=Organization(),
    )
    assert opened.status is RunStatus.SUCCEEDED, opened.reason
    case = org.only("Case")
    assert (case["Subject"], case["Origin"], case["Status"]) == ("Printer on fire", "Web", "New")
    assert "ContactId" not in case  # no contact matched: the null field was omitted
    solved = await run_flow(
        flows,
        "update-case-on-status-change",
        org,
        id="evt-9",
        type="ticket.status_changed",
        ticket={"status": "solved", "external_id": case["Id"]},
    )
    assert [s.status for s in solved.steps] == ["skipped", "succeeded"]
    assert org.only("Case")["Status"] == "Closed"


def test_the_example_in_the_language_reference_is_valid() -> None:
    """docs/flows.md opens with a complete flow; it must load against the real catalogue."""
    doc = (FLOWS.parent / "docs" / "flows.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    plan = compile_text(example, file="docs/flows.md")
    assert plan.step_ids == ("find_contact", "find_lead", "create_lead")
