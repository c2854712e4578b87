"""Two workers in one consumer group, bursts of concurrent events about the same people.

Both workers run as real ``actionflows worker`` processes on the session's broker, against one
emulated org in this process, with the example flows that matter here: one lead per unknown
requester (``flows/10``) and a note appended to a known contact per interaction (``flows/40``).
The burst: pairs of tickets from the same new person, and several interactions for the same
contact, all at once. The org must end with one lead per person, every note exactly once, and
no dead letter. A redrive of a letter left by the old flow (a stale "no lead found" in the
ledger) must succeed. The control runs the same burst through the flows as they were before
(no ``unique_by``; the note written as "description read + line") and sees the damage.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.ledger import KafkaLedger
from agents.ops.dlq import RedriveTopics, redrive, scan
from agents.worker import ensure_topics
from bench.processes import EmulatorAddress, WorkerProcess, worker_env
from pipeline.ledger import StepRecord, business_key, idempotency_key, run_key
from salesforce.client import SalesforceClient
from salesforce.consistency import ConsistentGateway
from salesforce.errors import DuplicateError
from sfemulator import Emulator, EmulatorConfig, emulator_connection
from tests.integration.test_replay import end_offsets
from tests.kafkatools import group_members, produce, read
from topics import headers as h
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole
from topics.records import DeadLetterRecord

FLOWS = Path(__file__).resolve().parents[2] / "flows"
CREATE_LEAD = "10-create-lead-for-unknown-requester.yaml"
ADD_NOTE = "40-add-note-after-interaction.yaml"
PEOPLE = 15  # new people, two tickets each
CONTACTS, NOTES = 5, 4  # known contacts, notes each
RUNS = 2 * PEOPLE + 2 * CONTACTS * NOTES  # an interaction also runs the lead flow (a contact)


def ticket(event_id: str, ticket_id: str, email: str) -> bytes:
    return orjson.dumps({
        "id": event_id, "type": "ticket.created", "ticket": {"id": ticket_id, "subject": "Hi"},
        "requester": {"name": f"Person {email.split('@')[0]}", "email": email},
    })  # fmt: skip


def chat(event_id: str, ticket_id: str, email: str, body: str) -> bytes:
    return orjson.dumps({
        "id": event_id, "type": "interaction.chat", "ticket": {"id": ticket_id},
        "time": "2026-11-25T11:00:00Z", "requester": {"name": "Known", "email": email},
        "interaction": {"channel": "chat", "body": body},
    })  # fmt: skip


def burst() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Tickets (two per new person, different tickets) and chats (several per contact), keyed by
    ticket as Zendesk events are, so they spread over partitions and run concurrently."""
    tickets = [
        (f"P{n}-{k}".encode(), ticket(f"p{n}-{k}", f"P{n}-{k}", f"new{n}@example.com"))
        for n in range(PEOPLE)
        for k in range(2)
    ]
    chats = [
        (f"C{c}-{k}".encode(), chat(f"c{c}-{k}", f"C{c}-{k}", f"known{c}@example.com", f"n{c}-{k}"))
        for k in range(NOTES)
        for c in range(CONTACTS)
    ]
    return tickets, chats


@pytest.fixture
async def org() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=11)) as emu:
        for c in range(CONTACTS):
            emu.insert("Contact", {"LastName": f"Known{c}", "Email": f"known{c}@example.com",
                                   "Description": "VIP"})  # fmt: skip
        emu.advance_clock(5)  # seeded a few seconds ago
        yield emu


class Workers:
    """Two ``actionflows worker`` processes in one group, over ``flows``."""

    def __init__(self, kafka: str, unique: str, emu: Emulator, flows: Path, logs: Path) -> None:
        name = f"restart-{unique}"
        self.kafka = kafka
        self.env = worker_env(
            kafka, name, name, EmulatorAddress.of(emu), PARTITIONS="4", RETRY_DELAYS="1s,2s"
        )
        self.prefix, self.group = (
            self.env["ACTIONFLOWS_TOPIC_PREFIX"],
            self.env["ACTIONFLOWS_APP_ID"],
        )
        self.flows, self.logs = flows, logs
        self.processes: list = []  # type: ignore[type-arg]

    async def __aenter__(self) -> Workers:
        settings = CatalogueSettings(prefix=self.prefix, partitions=4, retry_delays_ms=(1000, 2000))
        await ensure_topics(self.kafka, Catalogue.build(settings))
        self.processes = [
            WorkerProcess(self.env, self.flows, self.logs / f"worker{i}.log").start()
            for i in range(2)
        ]
        for _ in range(1200):  # both joined and assigned: a bounded wait, polled every 0.1 s
            if await group_members(self.kafka, self.group) == 2:
                return self
            await asyncio.sleep(0.1)
        tail = self.log_tail()
        await self.__aexit__()
        raise AssertionError(f"two workers did not join {self.group} in 120s:\n{tail}")

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes:
            await process.stop()

    def log_tail(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("worker*.log")))

    async def run(self, tickets: list[tuple[bytes, bytes]], chats: list[tuple[bytes, bytes]],
                  runs: int) -> list[dict[str, object]]:  # fmt: skip
        await asyncio.gather(
            produce(self.kafka, f"{self.prefix}.tickets", tickets),
            produce(self.kafka, f"{self.prefix}.interactions", chats),
        )
        try:
            records = await read(self.kafka, f"{self.prefix}.run-results", runs, timeout_s=240)
        except AssertionError as missing:
            raise AssertionError(f"{missing}\n{self.log_tail()}") from None
        return [orjson.loads(r.value) for r in records]


def flows_dir(tmp_path: Path, *, before_the_fix: bool = False) -> Path:
    folder = tmp_path / ("old-flows" if before_the_fix else "flows")
    folder.mkdir()
    for name in (CREATE_LEAD, ADD_NOTE):
        shutil.copy(FLOWS / name, folder / name)
    if before_the_fix:  # the flows of the bug report
        lead = (folder / CREATE_LEAD).read_text()
        (folder / CREATE_LEAD).write_text(re.sub(r"\n    unique_by: [^\n]*", "", lead))
        note = (folder / ADD_NOTE).read_text()
        old = ('    inputs:\n      object_id: "{{ steps.find_contact.id }}"\n      description: '
               '"{{ steps.find_contact.description | default(\'\') }}\\n\\1"\n')  # fmt: skip
        note = re.sub(r'    inputs: \{object_id: [^\n]*\n(?:    #[^\n]*\n)*    append:\n'
                      r'      Description: "([^\n]*)"\n', old, note)  # fmt: skip
        assert "append" not in note
        (folder / ADD_NOTE).write_text(note)
    return folder


def notes_of(emu: Emulator) -> dict[str, list[str]]:
    return {str(c["Email"]): str(c["Description"]).split("\n") for c in emu.records("Contact")}


async def test_two_workers_converge_on_one_lead_per_person_and_keep_every_note(
    kafka: str, unique: str, tmp_path: Path, org: Emulator
) -> None:
    """The burst on two workers: every run succeeds, no dead letter, one lead per new person,
    each contact's notes each exactly once."""
    tickets, chats = burst()
    async with Workers(kafka, unique, org, flows_dir(tmp_path), tmp_path) as workers:
        results = await workers.run(tickets, chats, RUNS)
        dead = sum(await end_offsets(kafka, f"{workers.prefix}.dead-letters", 4))
    assert {str(r["status"]) for r in results} == {"succeeded"}, [
        (r["flow"], r["event_id"], r["failed_step"]) for r in results if r["status"] != "succeeded"
    ]
    assert dead == 0
    leads = sorted(str(lead["Email"]) for lead in org.records("Lead"))
    assert leads == sorted(f"new{n}@example.com" for n in range(PEOPLE))
    for lead in org.records("Lead"):
        assert lead["Actionflows_Key__c"] == business_key("lead", str(lead["Email"]))
    for email, lines in notes_of(org).items():
        c = email.removeprefix("known").removesuffix("@example.com")
        expected = [f"chat (ticket C{c}-{k}): n{c}-{k}" for k in range(NOTES)]
        assert lines[0] == "VIP"
        for text in expected:
            assert sum(text in line for line in lines) == 1, (email, lines)
        assert len(lines) == NOTES + 1, lines


async def test_before_the_fix_the_same_burst_duplicates_people_and_loses_notes(
    kafka: str, unique: str, tmp_path: Path, org: Emulator
) -> None:
    """The control: the flows as they were (creates keyed by the event, the note written as the
    description read plus a line) on the same burst leave duplicate leads or dead letters, and
    lose notes."""
    tickets, chats = burst()
    async with Workers(kafka, unique, org, flows_dir(tmp_path, before_the_fix=True),
                       tmp_path) as workers:  # fmt: skip
        results = await workers.run(tickets, chats, RUNS)
    letters = [r for r in results if r["status"] == "dead_letter"]
    duplicated = len(org.records("Lead")) - len({lead["Email"] for lead in org.records("Lead")})
    assert letters or duplicated, "no race between two tickets of one person: widen the burst"
    lost = sum(NOTES + 1 - len(lines) for lines in notes_of(org).values())
    assert lost > 0, notes_of(org)


async def test_an_old_letter_with_a_stale_no_lead_found_redrives_to_success(
    kafka: str, unique: str, tmp_path: Path, org: Emulator
) -> None:
    """A letter from before the fix: the ledger says no contact and no lead were found, the
    create then failed as a duplicate because another ticket had created the lead. Redriven,
    the run reads again, finds the lead, creates nothing, and succeeds. Control: the create
    alone, even keyed by the person, is still refused (the lead has the old event key)."""
    flow = "create-lead-for-unknown-requester"
    email = "late@example.com"
    lead_id = org.insert("Lead", {"LastName": "Late", "Company": "[not provided]", "Email": email,
                                  "Actionflows_Key__c": idempotency_key("other", flow, "create_lead")})  # fmt: skip
    async with Workers(kafka, unique, org, flows_dir(tmp_path), tmp_path) as workers:
        prefix = workers.prefix
        catalogue = Catalogue.build(CatalogueSettings(prefix=prefix, partitions=4))
        ledger = KafkaLedger(kafka, catalogue.one(TopicRole.LEDGER).name)
        await ledger.start()
        try:
            nothing = {"id": None, "email": None, "description": None}
            for step in ("find_contact", "find_lead"):
                await ledger.put(run_key("old-1", flow, 1), step,
                                 StepRecord("succeeded", nothing, None, 1))  # fmt: skip
        finally:
            await ledger.stop()
        payload = ticket("old-1", "T-old", email)
        context = h.DeadLetterContext(
            topic=f"{prefix}.tickets", partition=2, offset=7, stage=h.Stage.STEP,
            reason="DUPLICATES_DETECTED", exception_class="salesforce.errors.DuplicateError",
            exception_message="Use one of these records?", event_id="old-1", flow=flow,
            flow_version=1, step="create_lead", attempts=1,
            salesforce_error_code="DUPLICATES_DETECTED",
        )  # fmt: skip
        letter = DeadLetterRecord(b"T-old", payload, context, ())
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(f"{prefix}.dead-letters", letter.to_bytes(),
                                         key=letter.key, headers=letter.headers)  # fmt: skip
        finally:
            await producer.stop()
        (old,) = await scan(kafka, f"{prefix}.dead-letters")
        topics = RedriveTopics(f"{prefix}.dead-letters", f"{prefix}.dlq-redriven")
        report = await redrive(kafka, topics, [old])
        assert len(report.redriven) == 1
        (result,) = await workers.run([], [], 1)
        dead = sum(await end_offsets(kafka, f"{prefix}.dead-letters", 4))
    assert (result["event_id"], result["status"]) == ("old-1", "succeeded"), result
    steps = {s["step"]: s["status"] for s in result["steps"]}  # type: ignore[union-attr]
    assert steps == {
        "find_contact": "succeeded",
        "find_lead": "succeeded",
        "create_lead": "skipped",
    }
    assert [lead["Id"] for lead in org.records("Lead")] == [lead_id]
    assert dead == 1  # the old letter only: the redrive did not fail again
    settings = emulator_connection(org.url, org.credentials, org.api_version)
    async with SalesforceClient(settings) as client:
        with pytest.raises(DuplicateError):
            await ConsistentGateway(client, client).find_or_create(
                "Lead", "Actionflows_Key__c", business_key("lead", email),
                {"LastName": "Late", "Company": "[not provided]", "Email": email},
            )  # fmt: skip
