"""The redaction rules apply to every value that leaves the worker. An email and a phone number are
planted in events; no output topic carries them in a value or a header. The one exception, by
design: a dead letter's (and a retry's) value is the original record, for redrive."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiokafka import ConsumerRecord

from agents.outcomes import Inbound, Outcomes
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings
from pipeline.events import Event, Person
from pipeline.loader import load_flows
from pipeline.result import RunResult, RunStatus, StepOutcome, StepStatus
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.kafkatools import produce, read
from topics.catalogue import Catalogue, CatalogueSettings
from topics.redaction import DEFAULT_REDACT_KEYS

GOOD_EMAIL, GOOD_PHONE = "jane.doe@acme.example", "+1 415 555 0100"
BAD_EMAIL, BAD_PHONE = "not-an-email@@example", "415.555.0199"
PLANTED = (GOOD_EMAIL, GOOD_PHONE, BAD_EMAIL, BAD_PHONE)

FLOW = """\
name: lead-and-notify
version: 1
trigger: {event_types: [ticket.created]}
steps:
  - id: create_lead
    action: salesforce.create_record
    object: lead
    inputs:
      name: "{{ event.requester.name }}"
      phone: "{{ event.requester.phone }}"
      description: "From {{ event.requester.email }}, call {{ event.requester.phone }}"
    fields: {Email: "{{ event.requester.email }}", Company: Acme}
publish:
  contact: "{{ event.requester.email }}"
  callback: "{{ event.requester.phone }}"
  note: "Lead {{ steps.create_lead.id }} for {{ event.requester.email }}"
"""


def event(event_id: str, ticket: str, email: str, phone: str) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": "ticket.created",
            "ticket": {"id": ticket, "subject": f"Please call {phone}"},
            "requester": {"name": "Jane Doe", "email": email, "phone": phone},
        }
    )


def leaks(records: list[ConsumerRecord[bytes, bytes]], *, values: bool) -> list[str]:
    """Each planted value found in a record's headers (and value, when ``values``)."""
    found = []
    for record in records:
        texts = [v.decode("utf-8", "replace") for _, v in record.headers]
        if values:
            texts.append(record.value.decode("utf-8", "replace"))
        found += [f"{record.topic}: {p}" for p in PLANTED for text in texts if p in text]
    return found


async def test_no_output_topic_carries_a_planted_email_or_phone(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """A run that succeeds (its published values quote the email and phone) and one that
    Salesforce refuses (INVALID_EMAIL_ADDRESS quoting the address): every step output, run
    result, and dead-letter header is free of both."""
    (tmp_path / "flow.yaml").write_text(FLOW)
    async with Emulator(EmulatorConfig(seed=11)) as emu:
        config = ServiceConfig(
            worker=WorkerSettings(
                bootstrap_servers=kafka, app_id=f"pii-{unique}", flows_dir=tmp_path
            ),
            connection=emulator_connection(emu.url, emu.credentials, emu.api_version),
            topics=CatalogueSettings(prefix=f"pii-{unique}", partitions=1),
        )
        prefix = config.topics.prefix
        async with Service(config):
            await produce(
                kafka,
                f"{prefix}.tickets",
                [
                    (b"T1", event("e1", "T1", GOOD_EMAIL, GOOD_PHONE)),
                    (b"T2", event("e2", "T2", BAD_EMAIL, BAD_PHONE)),
                ],
            )
            results = await read(kafka, f"{prefix}.run-results", 2, timeout_s=60)
            steps = await read(kafka, f"{prefix}.step-outputs", 2, timeout_s=60)
            letters = await read(kafka, f"{prefix}.dead-letters", 1, timeout_s=60)
    runs = {orjson.loads(r.value)["event_id"]: orjson.loads(r.value) for r in results}
    assert runs["e1"]["status"] == "succeeded"
    assert runs["e1"]["published"]["contact"] == "***"
    assert runs["e2"]["status"] == "dead_letter"
    refused = next(
        orjson.loads(s.value) for s in steps if orjson.loads(s.value)["event_id"] == "e2"
    )
    assert refused["error"]["errorCode"] == "INVALID_EMAIL_ADDRESS", "the refusal did not happen"
    assert "***" in refused["error"]["message"]
    headers = dict(letters[0].headers)
    assert headers["actionflows.errors.reason"] == b"salesforce.INVALID_EMAIL_ADDRESS"
    assert BAD_EMAIL.encode() in letters[0].value  # the original record, for redrive
    assert leaks(results + steps, values=True) == []
    assert leaks(letters, values=False) == []


def test_without_redaction_the_published_values_leak(tmp_path: Path) -> None:
    """Negative control: with no redaction keys the same run result carries the email, and the
    check above would fail; with the default keys it does not."""
    (tmp_path / "flow.yaml").write_text(FLOW)
    plan = load_flows(tmp_path).get("lead-and-notify")
    assert plan is not None
    person = Person(name="Jane Doe", email=GOOD_EMAIL, phone=GOOD_PHONE)
    ev = Event(id="e1", type="ticket.created", ticket_id="T1", requester=person)
    step = StepOutcome("create_lead", "salesforce.create_record", "lead", StepStatus.SUCCEEDED, "k")
    result = RunResult(
        "lead-and-notify", 1, "e1", "run", RunStatus.SUCCEEDED, (step,),
        published={"contact": GOOD_EMAIL, "note": f"call {GOOD_PHONE}"},
    )  # fmt: skip
    record = Inbound("actionflows.tickets", 0, 0, None, b"T1", b"{}")

    def published(keys: frozenset[str]) -> bytes:
        outcomes = Outcomes(Catalogue.build(), redact_keys=keys)
        out = outcomes.for_run(record, ev, plan, result, elapsed_ms=1.0, retry=None, now_s=0.0)
        return b"".join(o.value for o in out)

    assert GOOD_EMAIL.encode() in published(frozenset())
    assert GOOD_PHONE.encode() in published(frozenset())
    assert GOOD_EMAIL.encode() not in published(DEFAULT_REDACT_KEYS)
    assert GOOD_PHONE.encode() not in published(DEFAULT_REDACT_KEYS)
