"""``actionflows dlq`` on the real broker: browse, show, redrive once, and redrive end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ops import dlq
from agents.ops.dlq import RedriveTopics, redrive, scan
from agents.ops.letters import DeadLetter, LetterFilter
from agents.service import Service
from sfemulator import Emulator, EmulatorConfig
from sfemulator.rules import ValidationRule
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.integration.test_engine_e2e import service_config
from tests.kafkatools import create_topics, produce, read, wait_for
from topics import headers as h
from topics.errors import MalformedJson
from topics.records import DeadLetterRecord

TRACE = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
PAYLOAD = ticket_created("e1", "T1", "ada@example.com")


def step_failure(prefix: str) -> DeadLetterRecord:
    context = h.DeadLetterContext(
        topic=f"{prefix}.tickets", partition=1, offset=42, stage=h.Stage.STEP,
        reason="FIELD_CUSTOM_VALIDATION_EXCEPTION", exception_class="salesforce.errors.ValidationError",
        exception_message="Company is required", event_id="e1", flow="create-lead", flow_version=1,
        step="create_lead", attempts=1, salesforce_error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
    )  # fmt: skip
    return DeadLetterRecord(b"T1", PAYLOAD, context, (TRACE,))


def decode_failure(prefix: str) -> DeadLetterRecord:
    return DeadLetterRecord.for_decode_error(
        MalformedJson("unexpected end", 9), key=b"T2", value=b"{not json", headers=[TRACE],
        topic=f"{prefix}.interactions", partition=0, offset=3,
    )  # fmt: skip


async def end_offset(kafka: str, topic: str, partition: int = 0) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


@pytest.fixture
async def prefix(kafka: str, unique: str) -> str:
    """Input topics and a dead-letter topic holding a step failure (0:0) and a decode one (0:1)."""
    prefix = f"dl-{unique}"
    await create_topics(kafka, [f"{prefix}.tickets", f"{prefix}.interactions"], partitions=2)
    await create_topics(kafka, [f"{prefix}.dead-letters"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for letter in (step_failure(prefix), decode_failure(prefix)):
            await producer.send_and_wait(f"{prefix}.dead-letters", letter.to_bytes(),
                                         key=letter.key, headers=letter.headers)  # fmt: skip
    finally:
        await producer.stop()
    return prefix


def topics_of(prefix: str) -> RedriveTopics:
    return RedriveTopics(f"{prefix}.dead-letters", f"{prefix}.dlq-redriven")


async def test_redrive_reinjects_each_letter_into_its_input_topic_once(
    kafka: str, prefix: str
) -> None:
    """A step failure goes back to its partition as a retry of its flow; a decode failure as a
    plain record; a second redrive skips both; --force sends them again."""
    topics = topics_of(prefix)
    letters = await scan(kafka, topics.dead_letters)
    assert [letter.position for letter in letters] == ["0:0", "0:1"]
    report = await redrive(kafka, topics, letters, now_ms=1_700_000_000_000)
    assert len(report.redriven) == 2

    (retried,) = await read(kafka, f"{prefix}.tickets", 1)
    assert (retried.partition, retried.key, retried.value) == (1, b"T1", PAYLOAD)
    assert h.parse_retry_headers(retried.headers) == h.RetryContext(
        attempt=0, not_before_ms=1_700_000_000_000, origin_topic=f"{prefix}.tickets",
        origin_partition=1, origin_offset=42, flow="create-lead", resume_step="create_lead",
    )  # fmt: skip
    assert TRACE in retried.headers
    assert h.get(retried.headers, h.ERROR_REASON) is None
    assert h.get(retried.headers, h.REDRIVE_ID) == report.redrive_id.encode()
    (plain,) = await read(kafka, f"{prefix}.interactions", 1)
    assert (plain.partition, plain.key, plain.value) == (0, b"T2", b"{not json")
    assert h.parse_retry_headers(plain.headers) is None

    again = await redrive(kafka, topics, letters)
    assert (len(again.redriven), len(again.already)) == (0, 2)
    assert again.already[0][1]["redrive_id"] == report.redrive_id
    assert await end_offset(kafka, f"{prefix}.tickets", 1) == 1
    forced = await redrive(kafka, topics, letters, force=True)
    assert len(forced.redriven) == 2
    assert await end_offset(kafka, f"{prefix}.tickets", 1) == 2


async def test_a_dry_run_redrive_publishes_nothing(kafka: str, prefix: str) -> None:
    """--dry-run lists the letters it would redrive, sends none and marks none."""
    topics = topics_of(prefix)
    letters = await scan(
        kafka, topics.dead_letters, letters=LetterFilter(flows=frozenset({"create-lead"}))
    )
    report = await redrive(kafka, topics, letters, dry_run=True)
    assert [letter.position for letter, _ in report.redriven] == ["0:0"]
    assert await end_offset(kafka, f"{prefix}.tickets", 1) == 0
    assert (await redrive(kafka, topics, letters, dry_run=True)).already == []


async def run_cli(argv: list[str]) -> int:
    return await asyncio.to_thread(dlq.main, argv)


async def test_list_show_and_redrive_commands(
    kafka: str, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """list filters by error code; show masks personal data unless --raw; redrive by position
    says what it did, and a second redrive of the same letter skips it."""
    monkeypatch.setenv("ACTIONFLOWS_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka)
    assert await run_cli(["list", "--error-code", "malformed_json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The first column is the position; a timestamp such as 08:10:05 contains "0:0" too.
    assert [line.split()[0] for line in lines[:-1]] == ["0:1"]
    assert lines[-1].startswith("1 dead letter(s)")

    assert await run_cli(["show", "0:0"]) == 0
    out = capsys.readouterr().out
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in out
    assert "retry of flow create-lead at create_lead" in out
    assert '"email": "***"' in out
    assert "ada@example.com" not in out
    assert await run_cli(["show", "0:0", "--raw"]) == 0
    assert "ada@example.com" in capsys.readouterr().out
    assert await run_cli(["show", "0:9"]) == 1
    assert "no dead letter at 0:9" in capsys.readouterr().err

    assert await run_cli(["redrive", "0:0"]) == 0
    assert "1 redriven, 0 already redriven" in capsys.readouterr().out
    assert await run_cli(["redrive", "0:0"]) == 0
    assert "skipped: already redriven" in capsys.readouterr().out
    assert await run_cli(["list", "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["position"], bool(r["redriven_by"])) for r in rows] == [
        ("0:0", True),
        ("0:1", False),
    ]


async def test_a_fixed_validation_error_is_redriven_through_the_worker(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """A lead refused by a validation rule is dead-lettered; once the rule is fixed, the redrive
    re-runs only that flow, reading again (the find runs again, on the org as it is now), and
    the lead exists."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    broken = {"rule": True}
    rule = ValidationRule("Lead", lambda _: broken["rule"], "Company is required", "Company")
    async with Emulator(EmulatorConfig(seed=2, validation_rules=(rule,))) as emu:
        config = service_config(kafka, unique, tmp_path, emu)
        prefix = config.topics.prefix
        async with Service(config):
            await produce(kafka, f"{prefix}.tickets", [(b"T1", PAYLOAD)])
            (letter,) = await read(kafka, f"{prefix}.dead-letters", 1)
            context = DeadLetter.of(0, 0, None, letter.key, letter.value, letter.headers).context
            assert context is not None
            assert (context.flow, context.step) == ("create-lead", "create_lead")
            assert emu.records("Lead") == []

            broken["rule"] = False  # the admin fixes the org
            letters = await scan(kafka, f"{prefix}.dead-letters")
            report = await redrive(kafka, topics_of(prefix), letters)
            assert len(report.redriven) == 1

            async def lead() -> bool:
                return len(emu.records("Lead")) == 1

            await wait_for(lead, timeout_s=30, what="the lead created by the redriven run")
            results = await read(kafka, f"{prefix}.run-results", 2)
            steps = await read(kafka, f"{prefix}.step-outputs", 4)
    assert [orjson.loads(r.value)["status"] for r in results] == ["dead_letter", "succeeded"]
    second_run = [orjson.loads(s.value) for s in steps[2:]]
    assert [(s["step"], s["status"]) for s in second_run] == [
        ("find_lead", "succeeded"), ("create_lead", "succeeded")
    ]  # fmt: skip
    assert emu.records("Lead")[0]["Email"] == "ada@example.com"


async def test_a_1000_deep_event_is_dead_lettered_and_shown(
    kafka: str,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 9: a 1,000-deep event became an engine_error and `dlq show` on its letter crashed
    with RecursionError. Now the worker dead-letters it at decode (decode.too_deep), the next
    event still runs, and `dlq show` prints the letter with and without --raw."""
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    deep = (
        b'{"id": "deep", "type": "ticket.created", "ticket": {"id": "T9"}, '
        b'"requester": {"email": "deep@example.com"}, "attributes": '
        + b'{"a": ' * 1000
        + b"1"
        + b"}" * 1001
    )
    async with Emulator(EmulatorConfig(seed=4)) as emu:
        config = service_config(kafka, unique, tmp_path, emu)
        prefix = config.topics.prefix
        async with Service(config):
            await produce(kafka, f"{prefix}.tickets", [(b"T9", deep), (b"T9", PAYLOAD)])
            [letter] = await read(kafka, f"{prefix}.dead-letters", 1, timeout_s=60)
            [result] = await read(kafka, f"{prefix}.run-results", 1, timeout_s=60)
    assert dict(letter.headers)[h.ERROR_REASON] == b"decode.too_deep"
    assert letter.value == deep
    assert orjson.loads(result.value)["event_id"] == "e1"
    monkeypatch.setenv("ACTIONFLOWS_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka)
    position = f"{letter.partition}:{letter.offset}"
    assert await run_cli(["show", position]) == 0
    out = capsys.readouterr().out
    assert "JSON nested deeper than 64 levels, shown as text, redacted" in out
    assert "deep@example.com" not in out
    assert await run_cli(["show", position, "--raw"]) == 0
    assert "deep@example.com" in capsys.readouterr().out
