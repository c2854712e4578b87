"""Exactly-once effects across crashes and lost answers, and proof that the mechanisms matter.

One scenario, run three times: with the ledger and the upsert keys (the proof), without the
ledger, and without the upsert keys (the negative controls, which must show duplicates).

- A real worker process (``actionflows worker``) on the session's broker; the emulator in this
  process, with its duplicate rules off, so nothing but the worker's own mechanisms can keep a
  record from being created twice.
- A create-only flow, run for every event of one ticket (so one event is in flight at a time):
  ``open_case`` creates a case with no upsert key, then ``create_lead`` creates a lead with one.
- 15% of lead writes lose their answer after Salesforce committed them (``fail_after_commit``).
- Two SIGKILLs, each while Salesforce has committed a lead and holds its answer: the worker dies
  between Salesforce's commit and its own ledger write. The case of that event is in the ledger.
- Then a replay of the whole input topic.

What each mechanism is for, and so what each control shows:

- The upsert key makes the redelivered lead write find the lead the killed worker created (and
  makes a retry after a lost answer safe). Without it, each kill leaves a second lead.
- The ledger makes the redelivered event reuse its completed case step, which has no key.
  Without it, redelivered and replayed events create their cases again.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from agents.ops.replay import main as replay_main
from agents.ops.slices import read_slice
from bench.processes import EmulatorAddress, EmulatorAdmin, WorkerProcess, worker_env
from sfemulator import Emulator, EmulatorConfig, FaultRule
from tests.agents.test_engine import ticket_created
from tests.kafkatools import create_topics, produce, wait_for

EVENTS = 30
KILLS = 2
HOLD_MS = 15_000  # a held answer waits until the test releases it after the kill; this bounds it
# below the client's 30 s timeout and the emulator's 20 s long-running threshold
LOST = FaultRule("fail_after_commit", sobject="Lead", probability=0.15)
HELD = FaultRule("fail_after_commit", sobject="Lead", latency_ms=HOLD_MS, times=1)
KEYED_LEADS = "lead=Actionflows_Key__c"  # the case stays a plain create on purpose

FLOW = """\
name: proof
version: 1
trigger:
  event_types: [ticket.created]
steps:
  - id: open_case
    action: salesforce.create_record
    object: case
    inputs: {name: "proof {{ event.id }}"}
  - id: create_lead
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}", description: "proof {{ event.id }}"}
    fields: {Email: "{{ event.requester.email }}"}
    policy: {max_attempts: 8, backoff: {initial_s: 0.01, max_s: 0.05}}
"""


@dataclass(frozen=True)
class Outcome:
    events: list[str]
    leads: Counter[str]  # event id -> leads whose Description names it
    cases: Counter[str]  # event id -> cases whose Subject names it
    case_order: list[str]  # event ids in the order Salesforce numbered their first case
    succeeded_runs: dict[str, set[str]]  # event id -> distinct run ids with a succeeded result
    dead_letters: int
    lost_answers: int  # lost-answer faults that fired, the held answers of the kills not counted

    def duplicated(self, counts: Counter[str]) -> dict[str, int]:
        return {event: n for event, n in counts.items() if n > 1}

    def missing(self, counts: Counter[str]) -> list[str]:
        return [event for event in self.events if counts[event] == 0]


async def scenario(kafka: str, unique: str, tmp_path: Path, **settings: str) -> Outcome:
    """Run the scenario of the module docstring with worker ``settings`` (env, no prefix)."""
    rng = random.Random(20261130)
    config = EmulatorConfig(seed=4, latency_ms=5.0, duplicate_rules=(), faults=(LOST,))
    async with Emulator(config) as emu, EmulatorAdmin(emu.url) as admin:
        flows = tmp_path / "flows"
        flows.mkdir()
        (flows / "proof.yaml").write_text(FLOW)
        prefix = f"proof-{unique}"
        env = worker_env(
            kafka,
            prefix,
            prefix,
            EmulatorAddress.of(emu),
            PARTITIONS="1",
            RETRY_DELAYS="1s,2s",
            **settings,
        )
        tickets = f"{prefix}.tickets"
        await create_topics(kafka, [tickets])
        events = [f"e{i:02d}" for i in range(EVENTS)]
        await produce(
            kafka, tickets, [(b"T1", ticket_created(e, "T1", f"{e}@example.com")) for e in events]
        )
        log = tmp_path / "worker.log"

        async def counts() -> dict[str, object]:
            return await admin.fault_counts()

        for kill in range(KILLS):
            worker = WorkerProcess(env, flows, log).start()
            try:
                target = (kill + 1) * EVENTS // (KILLS + 2) + rng.randint(0, 3)
                await wait_for(
                    _at_least(worker, lambda: len(emu.records("Lead")), target),
                    timeout_s=120,
                    what=f"kill {kill}: {target} leads\n{worker.tail()}",
                )
                await admin.set_faults([HELD, LOST])  # the next lead write is held...
                await wait_for(
                    _equals(worker, counts, "withheld", 1),
                    timeout_s=120,
                    what=f"kill {kill}: a held lead write\n{worker.tail()}",
                )
                await worker.kill()  # ...and the worker dies waiting for its answer
                held = await admin.fault_counts()
                assert held["withheld"] == 1, "the kill came after the held answer was released"
                assert await admin.release() == 1
                await admin.set_faults([LOST])
            finally:
                await worker.kill()

        worker = WorkerProcess(env, flows, log).start()
        try:
            results = f"{prefix}.run-results"
            before = await wait_for(
                _every_event_finished(worker, kafka, results, events, Counter()),
                timeout_s=180,
                what=f"every event to finish\n{worker.tail()}",
            )
            replayed = await asyncio.to_thread(
                replay_main, ["--topic", tickets, "--all", "--quiet", "--bootstrap-servers", kafka]
            )
            assert replayed == 0
            await wait_for(
                _every_event_finished(worker, kafka, results, events, before),
                timeout_s=180,
                what=f"every replayed event to finish again\n{worker.tail()}",
            )
        finally:
            await worker.stop()

        fired = (await admin.fault_counts())["fired"]
        runs = [orjson.loads(r.value) for r in await read_slice(kafka, results)]
        letters = await read_slice(kafka, f"{prefix}.dead-letters")
        cases = sorted(emu.records("Case"), key=lambda case: case["CaseNumber"])
        case_order = list(dict.fromkeys(case["Subject"].removeprefix("proof ") for case in cases))
        succeeded: dict[str, set[str]] = {event: set() for event in events}
        for run in runs:
            if run["status"] == "succeeded":
                succeeded[run["event_id"]].add(run["run_id"])
        return Outcome(
            events=events,
            leads=Counter(
                lead["Description"].removeprefix("proof ") for lead in emu.records("Lead")
            ),
            cases=Counter(case["Subject"].removeprefix("proof ") for case in cases),
            case_order=case_order,
            succeeded_runs=succeeded,
            dead_letters=len(letters),
            lost_answers=fired.get("fail_after_commit", 0) - KILLS,
        )


def _at_least(
    worker: WorkerProcess, count: Callable[[], int], target: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        worker.assert_running()
        return count() >= target

    return check


def _equals(
    worker: WorkerProcess,
    read: Callable[[], Awaitable[dict[str, object]]],
    key: str,
    value: int,
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        worker.assert_running()
        return (await read())[key] == value

    return check


def _every_event_finished(
    worker: WorkerProcess, kafka: str, topic: str, events: list[str], before: Counter[str]
) -> Callable[[], Awaitable[Counter[str] | None]]:
    """Each event has more final run results (succeeded or dead-lettered) than ``before``."""

    async def check() -> Counter[str] | None:
        worker.assert_running()
        records = await read_slice(kafka, topic)
        final = Counter(
            run["event_id"]
            for run in map(orjson.loads, (r.value for r in records))
            if run["status"] in {"succeeded", "dead_letter"}
        )
        return final if all(final[e] > before[e] for e in events) else None

    return check


async def test_crashes_and_lost_answers_leave_every_effect_exactly_once(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """With the ledger and the upsert keys: the faults fired, each event has exactly one case
    and one lead (counted by the event id the flow writes), no dead letter, exactly one
    distinct succeeded run per event, and the cases were created in the ticket's order."""
    outcome = await scenario(kafka, unique, tmp_path, EXTERNAL_ID_FIELDS=KEYED_LEADS, LEDGER="on")
    assert outcome.lost_answers >= 3, f"only {outcome.lost_answers} lost answers fired"
    assert outcome.duplicated(outcome.leads) == {}
    assert outcome.duplicated(outcome.cases) == {}
    assert outcome.missing(outcome.leads) == []
    assert outcome.missing(outcome.cases) == []
    assert outcome.dead_letters == 0
    assert {e: len(runs) for e, runs in outcome.succeeded_runs.items() if len(runs) != 1} == {}
    assert outcome.case_order == outcome.events


async def test_without_the_upsert_keys_a_crash_duplicates_the_lead(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """Negative control: plain creates. The lead committed before each kill is created again
    when its event is redelivered (and a lost answer dead-letters its event, which the replay
    then runs again)."""
    outcome = await scenario(kafka, unique, tmp_path, EXTERNAL_ID_FIELDS="none", LEDGER="on")
    assert len(outcome.duplicated(outcome.leads)) >= KILLS, outcome.leads


async def test_without_the_ledger_redelivery_and_replay_duplicate_the_case(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """Negative control: no ledger topic. Redelivered and replayed events create their cases
    (which have no upsert key) again; the keyed leads stay single."""
    outcome = await scenario(kafka, unique, tmp_path, EXTERNAL_ID_FIELDS=KEYED_LEADS, LEDGER="off")
    assert len(outcome.duplicated(outcome.cases)) >= KILLS, outcome.cases
    assert outcome.duplicated(outcome.leads) == {}
