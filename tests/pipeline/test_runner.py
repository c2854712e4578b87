"""The runner: branching by `when`, the ledger, retries, classification, resume."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.actions import ActionInput, ActionResult
from pipeline.errors import ResumeError
from pipeline.ledger import InMemoryLedger, StepRecord, idempotency_key, run_key
from pipeline.loader import compile_text
from pipeline.plan import Plan
from pipeline.result import RunStatus
from pipeline.runner import run
from tests.pipeline.flow_fakes import (
    CATALOGUE,
    CONVERT,
    CREATE,
    FIND,
    FakeClock,
    Permanent,
    ScriptedExecutor,
    Throttled,
    Transient,
    make_event,
    make_ports,
)

LEAD_FLOW = """
name: create-lead
version: 3
steps:
  - id: find_contact
    action: salesforce.find_record
    object: contact
    inputs: {email: "{{ event.requester.email }}"}
  - id: find_lead
    when: {not: {exists: steps.find_contact.id}}
    action: salesforce.find_record
    object: lead
    inputs: {email: "{{ event.requester.email }}"}
  - id: create_lead
    when: {and: [{not: {exists: steps.find_contact.id}}, {not: {exists: steps.find_lead.id}}]}
    action: salesforce.create_record
    object: lead
    inputs:
      name: "{{ event.requester.name }}"
      phone: "{{ event.requester.phone }}"
      description: "Ticket {{ event.ticket_id }}: {{ event.ticket.subject }}"
    fields:
      Email: "{{ event.requester.email }}"
      LeadSource: Support
      Missing: "{{ event.attributes.nope }}"
    policy: {max_attempts: 5, max_attempts_in_process: 3, backoff: {initial_s: 0.5, max_s: 4}}
publish:
  lead_id: "{{ steps.create_lead.id }}"
  contact_id: "{{ steps.find_contact.id }}"
"""


def plan_of(text: str, **kwargs: Any) -> Plan:
    return compile_text(text, catalogue=CATALOGUE, **kwargs)


def found(record_id: str) -> ActionResult:
    return ActionResult(outputs={"id": record_id}, salesforce_id=record_id)


async def test_unknown_requester_gets_a_lead_with_rendered_inputs() -> None:
    """No contact, no lead: the lead is created from the event, with the step's key."""
    executor = ScriptedExecutor()
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert result.status is RunStatus.SUCCEEDED
    assert executor.kinds() == [(FIND, "contact"), (FIND, "lead"), (CREATE, "lead")]
    create = executor.calls[2]
    assert create.inputs == {
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0000",
        "description": "Ticket 4242: Printer on fire",
    }
    assert create.extra_fields == {"Email": "ada@example.com", "LeadSource": "Support"}
    assert create.idempotency_key == idempotency_key("evt-1", "create-lead", "create_lead")
    assert [s.status for s in result.steps] == ["succeeded", "succeeded", "succeeded"]
    assert result.published == {"lead_id": result.outputs["create_lead"]["id"]}


async def test_a_known_contact_skips_the_lead_steps() -> None:
    """Find contact, else find lead, else create lead: a contact stops the chain."""
    executor = ScriptedExecutor().on(FIND, "contact", found("003C"))
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert result.status is RunStatus.SUCCEEDED
    assert executor.kinds() == [(FIND, "contact")]
    assert [s.status for s in result.steps] == ["succeeded", "skipped", "skipped"]
    assert result.published == {"contact_id": "003C"}


async def test_a_known_lead_is_not_created_again() -> None:
    """A lead found by email means no create: no duplicate data."""
    executor = ScriptedExecutor().on(FIND, "lead", found("00QL"))
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert executor.kinds() == [(FIND, "contact"), (FIND, "lead")]
    assert result.step("create_lead").status == "skipped"  # type: ignore[union-attr]


async def test_redelivery_reuses_the_ledger_and_calls_nothing() -> None:
    """Running the same event twice executes every step once; the second run reuses all."""
    executor, ledger = ScriptedExecutor(), InMemoryLedger()
    first = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor, ledger))
    second = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor, ledger))
    assert len(executor.calls) == 3
    assert [s.status for s in second.steps] == ["reused"] * 3
    assert second.outputs == first.outputs
    assert second.published == first.published
    assert second.status is RunStatus.SUCCEEDED


async def test_transient_failures_retry_in_process_with_backoff() -> None:
    """Two 503s then success: three attempts, two jittered sleeps on the injected clock."""
    executor = ScriptedExecutor().on(
        CREATE, "lead", Transient("503"), Transient("503"), found("00QN")
    )
    ports = make_ports(executor)
    result = await run(plan_of(LEAD_FLOW), make_event(), ports)
    assert result.status is RunStatus.SUCCEEDED
    outcome = result.step("create_lead")
    assert outcome is not None
    assert outcome.attempt == 3
    assert isinstance(ports.clock, FakeClock)
    assert ports.clock.sleeps == [0.375, 0.75]  # equal jitter at draw 0.5: ¾ of 0.5 s, 1 s
    assert outcome.duration_ms == 1125.0


async def test_persistent_transient_failure_is_retried_later_then_dead_lettered() -> None:
    """In-process attempts used up → retry_later; attempts across deliveries used up → DLQ."""
    executor = ScriptedExecutor().on(CREATE, "lead", Transient("UNABLE_TO_LOCK_ROW"))
    plan, ledger = plan_of(LEAD_FLOW), InMemoryLedger()
    first = await run(plan, make_event(), make_ports(executor, ledger))
    assert first.status is RunStatus.RETRY_LATER
    assert first.failed_step == "create_lead" == first.resume_from
    assert first.error is not None
    assert first.error.retriable
    later = await run(plan, make_event(), make_ports(executor, ledger), prior_attempts=3)
    assert later.status is RunStatus.DEAD_LETTER
    assert later.step("create_lead").attempt == 5  # type: ignore[union-attr]
    assert [s.status for s in later.steps] == ["succeeded", "succeeded", "failed"]  # re-read
    assert "after 5 attempts" in (later.reason or "")


async def test_permanent_failure_dead_letters_with_salesforce_details() -> None:
    """A validation error is not retried; the outcome carries errorCode and fields."""
    error = Permanent("bad email", error_code="INVALID_EMAIL_ADDRESS", fields=["Email"])
    executor = ScriptedExecutor().on(CREATE, "lead", error)
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert result.status is RunStatus.DEAD_LETTER
    assert len(executor.calls) == 3
    failed = result.step("create_lead")
    assert failed is not None
    assert failed.error is not None
    assert (failed.error.error_code, failed.error.fields, failed.attempt) == (
        "INVALID_EMAIL_ADDRESS",
        ("Email",),
        1,
    )
    assert failed.inputs["name"] == "Ada Lovelace"
    assert result.published == {}


async def test_throttling_pauses_without_burning_an_attempt() -> None:
    """A spent API budget pauses the run; the throttled call does not count."""
    executor = ScriptedExecutor().on(FIND, "contact", Throttled("limit", retry_after=30))
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert result.status is RunStatus.PAUSED
    assert result.retry_after == 30
    assert result.steps[0].attempt == 0


async def test_ambiguous_create_is_never_retried_blindly() -> None:
    """A timeout on a plain create dead-letters at once, with the reason."""
    executor = ScriptedExecutor()
    executor.hang.add((CREATE, "lead"))
    text = LEAD_FLOW.replace("backoff: {initial_s: 0.5, max_s: 4}", "timeout_s: 0.01")
    result = await run(plan_of(text), make_event(), make_ports(executor))
    assert result.status is RunStatus.DEAD_LETTER
    assert "non-idempotent" in (result.reason or "")
    assert executor.kinds().count((CREATE, "lead")) == 1


async def test_an_upsert_create_retries_after_a_timeout() -> None:
    """With an external-id field configured, the create is idempotent and a timeout retries."""
    executor = ScriptedExecutor().on(
        CREATE, "lead", Transient("reset", ambiguous=True), found("00QU")
    )
    plan = plan_of(LEAD_FLOW, external_id_fields={"lead": "Actionflows_Key__c"})
    result = await run(plan, make_event(), make_ports(executor))
    assert result.status is RunStatus.SUCCEEDED
    assert executor.calls[-1].options == {"external_id_field": "Actionflows_Key__c"}
    assert executor.calls[0].options == {}  # finds are not given the field


async def test_resume_reads_again_and_retries_the_failed_step() -> None:
    """A redrive at the failed step runs the finds before it again, on what the org holds
    now, then the failed step."""
    ledger = InMemoryLedger()
    broken = ScriptedExecutor().on(CREATE, "lead", Permanent("validation rule"))
    plan = plan_of(LEAD_FLOW)
    assert (await run(plan, make_event(), make_ports(broken, ledger))).status == "dead_letter"
    fixed = ScriptedExecutor()
    result = await run(plan, make_event(), make_ports(fixed, ledger), resume_from="create_lead")
    assert result.status is RunStatus.SUCCEEDED
    assert fixed.kinds() == [(FIND, "contact"), (FIND, "lead"), (CREATE, "lead")]


async def test_the_same_delivery_after_a_pause_keeps_its_finds() -> None:
    """reread=False (the engine's run going on after a budget pause) reuses the finds the
    ledger holds and goes straight to the step that was paused; a new delivery reads again."""
    ledger = InMemoryLedger()
    broken = ScriptedExecutor().on(CREATE, "lead", Permanent("validation rule"))
    plan = plan_of(LEAD_FLOW)
    assert (await run(plan, make_event(), make_ports(broken, ledger))).status == "dead_letter"
    going_on = ScriptedExecutor()
    result = await run(plan, make_event(), make_ports(going_on, ledger), reread=False)
    assert result.status is RunStatus.SUCCEEDED
    assert going_on.kinds() == [(CREATE, "lead")]


async def test_a_redrive_that_finds_the_lead_now_creates_none() -> None:
    """The old letter: the ledger says "no lead found", but another ticket has created the
    lead since. The redrive reads again, finds it, and skips the create."""
    ledger = InMemoryLedger()
    duplicate = Permanent("duplicate", error_code="DUPLICATES_DETECTED")
    broken = ScriptedExecutor().on(CREATE, "lead", duplicate)
    plan = plan_of(LEAD_FLOW)
    assert (await run(plan, make_event(), make_ports(broken, ledger))).status == "dead_letter"
    now = ScriptedExecutor().on(FIND, "lead", found("00QL"))
    result = await run(plan, make_event(), make_ports(now, ledger), resume_from="create_lead")
    assert result.status is RunStatus.SUCCEEDED
    assert now.kinds() == [(FIND, "contact"), (FIND, "lead")]
    assert [s.status for s in result.steps] == ["succeeded", "succeeded", "skipped"]


WRITE_THEN_FAIL = """
name: case-then-note
version: 1
steps:
  - id: find_contact
    action: salesforce.find_record
    object: contact
    inputs: {email: "{{ event.requester.email }}"}
  - id: create_lead
    when: {not: {exists: steps.find_contact.id}}
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}"}
  - id: note
    action: salesforce.update_record
    object: contact
    inputs: {object_id: "{{ steps.find_contact.id }}", description: noted}
"""


async def test_a_resumed_run_reuses_the_writes_it_made() -> None:
    """Writes the ledger holds are reused, never repeated, even when the finds before them
    now answer differently; a skip is decided again."""
    ledger = InMemoryLedger()
    first = (
        ScriptedExecutor()
        .on(FIND, "contact", found("003C"))
        .on("salesforce.update_record", "contact", Permanent("locked"))
    )
    plan = plan_of(WRITE_THEN_FAIL)
    failed = await run(plan, make_event(), make_ports(first, ledger))
    assert [s.status for s in failed.steps] == ["succeeded", "skipped", "failed"]
    again = ScriptedExecutor().on(FIND, "contact", found("003C"))
    result = await run(plan, make_event(), make_ports(again, ledger))
    assert result.status is RunStatus.SUCCEEDED
    assert [s.status for s in result.steps] == ["succeeded", "skipped", "succeeded"]
    made = InMemoryLedger()
    lead_made = ScriptedExecutor().on("salesforce.update_record", "contact", Permanent("x"))
    await run(plan_of(WRITE_THEN_FAIL), make_event(), make_ports(lead_made, made))
    contact_now = ScriptedExecutor().on(FIND, "contact", found("003C"))
    resumed = await run(plan_of(WRITE_THEN_FAIL), make_event(), make_ports(contact_now, made))
    assert [s.status for s in resumed.steps] == ["succeeded", "reused", "succeeded"]
    assert contact_now.kinds() == [(FIND, "contact"), ("salesforce.update_record", "contact")]


async def test_resume_needs_the_earlier_records() -> None:
    """Resuming without the earlier steps' records, or at an unknown step, is refused."""
    plan = plan_of(LEAD_FLOW)
    with pytest.raises(ResumeError, match="no record of the earlier step 'find_contact'"):
        await run(plan, make_event(), make_ports(ScriptedExecutor()), resume_from="create_lead")
    with pytest.raises(ResumeError, match="no step 'nope'"):
        await run(plan, make_event(), make_ports(ScriptedExecutor()), resume_from="nope")


CONTINUE_FLOW = """
name: notes
version: 1
steps:
  - id: find_contact
    action: salesforce.find_record
    object: contact
    inputs: {email: "{{ event.requester.email }}"}
  - id: note
    action: salesforce.update_record
    object: contact
    on_error: continue
    inputs: {object_id: "{{ steps.find_contact.id }}", description: "{{ event.ticket.subject }}"}
  - id: find_account
    action: salesforce.find_record
    object: account
    inputs: {name: "{{ event.organization.name }}"}
"""


async def test_on_error_continue_records_the_failure_and_goes_on() -> None:
    """A tolerated failure is recorded (and not retried on redelivery); the run continues."""
    executor = (
        ScriptedExecutor()
        .on(FIND, "contact", found("003C"))
        .on("salesforce.update_record", "contact", Permanent("locked"))
    )
    ledger = InMemoryLedger()
    result = await run(plan_of(CONTINUE_FLOW), make_event(), make_ports(executor, ledger))
    assert result.status is RunStatus.SUCCEEDED
    assert [s.status for s in result.steps] == ["succeeded", "failed", "succeeded"]
    key = run_key("evt-1", "notes", 1)
    assert await ledger.get(key, "note") == StepRecord("failed", {}, None, 1)
    again = await run(plan_of(CONTINUE_FLOW), make_event(), make_ports(executor, ledger))
    assert [s.recorded_status for s in again.steps] == ["succeeded", "failed", "succeeded"]


async def test_required_inputs_that_render_none_are_passed_as_none() -> None:
    """An optional None input is omitted; a required one stays so the executor can say why."""
    executor = ScriptedExecutor()
    await run(plan_of(CONTINUE_FLOW), make_event(), make_ports(executor))
    update = executor.calls[1]
    assert update.inputs == {"object_id": None, "description": "Printer on fire"}


async def test_a_run_where_every_step_is_skipped_is_skipped() -> None:
    """When no step's `when` holds, the run is `skipped`, not `succeeded`."""
    text = """
name: only-vip
version: 1
steps:
  - id: convert
    when: {gt: ["{{ event.attributes.ai_lead_score }}", 0.95]}
    action: salesforce.convert_lead
    inputs: {lead_id: "{{ event.attributes.lead_id }}"}
"""
    executor = ScriptedExecutor()
    result = await run(plan_of(text), make_event(), make_ports(executor))
    assert result.status is RunStatus.SKIPPED
    assert executor.calls == []
    assert plan_of(text).steps[0].kind == CONVERT  # object implied by the action


async def test_bugs_in_the_executor_dead_letter_instead_of_escaping() -> None:
    """An unexpected exception is classified (permanent), never lost."""

    def boom(action: ActionInput) -> ActionResult:
        raise ZeroDivisionError("oops")

    executor = ScriptedExecutor().on(FIND, "contact", boom)
    result = await run(plan_of(LEAD_FLOW), make_event(), make_ports(executor))
    assert result.status is RunStatus.DEAD_LETTER
    assert result.error is not None
    assert result.error.error_class == "ZeroDivisionError"
    assert result.as_dict()["status"] == "dead_letter"


async def test_a_dry_run_reads_but_only_shows_its_writes() -> None:
    """Dry run: finds execute, the create is shown with its inputs and fields, nothing is
    written to Salesforce or the ledger, so a later real run still does the work."""
    executor, ledger = ScriptedExecutor(), InMemoryLedger()
    plan = plan_of(LEAD_FLOW)
    dry = await run(plan, make_event(), make_ports(executor, ledger), dry_run=True)
    assert dry.dry_run
    assert dry.status is RunStatus.SUCCEEDED
    assert executor.kinds() == [(FIND, "contact"), (FIND, "lead")]
    shown = dry.step("create_lead")
    assert shown is not None
    assert shown.status == "dry_run"
    assert shown.inputs["name"] == "Ada Lovelace"
    assert shown.fields == {"Email": "ada@example.com", "LeadSource": "Support"}
    assert ledger.records(dry.run_key) == {}
    real = await run(plan, make_event(), make_ports(executor, ledger))
    assert [s.status for s in real.steps] == ["succeeded"] * 3


async def test_numbers_going_into_string_inputs_become_text() -> None:
    """A single-expression template keeps its type, but a string input receives text."""
    text = """
name: score-note
version: 1
steps:
  - id: note
    action: salesforce.update_record
    object: contact
    inputs: {object_id: "003C", description: "{{ event.attributes.ai_lead_score }}",
             name: "{{ event.attributes.vip }}"}
"""
    executor = ScriptedExecutor()
    await run(
        plan_of(text),
        make_event(attributes={"ai_lead_score": 87, "vip": True}),
        make_ports(executor),
    )
    assert executor.calls[0].inputs == {"object_id": "003C", "description": "87", "name": "true"}


async def test_prior_attempts_by_step_survive_a_lost_ledger() -> None:
    """Given per step, earlier attempts count against the step that failed, even when the
    ledger forgot the steps before it and they run again."""
    executor = ScriptedExecutor().on(CREATE, "lead", Transient("UNABLE_TO_LOCK_ROW"))
    result = await run(
        plan_of(LEAD_FLOW), make_event(), make_ports(executor), prior_attempts={"create_lead": 4}
    )
    assert [s.attempt for s in result.steps] == [1, 1, 5]
    assert result.status is RunStatus.DEAD_LETTER
    assert executor.kinds().count((CREATE, "lead")) == 1
