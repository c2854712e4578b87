"""A worker process that is stopped or killed mid-stream loses no event and duplicates no record.

The worker runs as a real subprocess (``actionflows worker``) against the session's broker and
an emulator in this process; the test stops it with SIGTERM or SIGKILL while it works, starts a
new one, and checks the org: one lead per event, every event with a succeeded run result.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from agents.ops.replay import main as replay_main
from agents.ops.slices import read_slice
from sfemulator import Emulator, EmulatorConfig, FaultRule
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.kafkatools import create_topics, produce, wait_for

EVENTS = 120


@pytest.fixture
async def slow_emulator() -> AsyncIterator[Emulator]:
    """Every API call takes ~20 ms, so a kill lands while work is in flight."""
    config = EmulatorConfig(seed=3, latency_ms=20.0)
    async with Emulator(config) as emu:
        yield emu


def worker_env(kafka: str, unique: str, emu: Emulator) -> dict[str, str]:
    creds = emu.credentials
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ACTIONFLOWS_APP_ID": f"restart-{unique}",
        "ACTIONFLOWS_TOPIC_PREFIX": f"restart-{unique}",
        "ACTIONFLOWS_PARTITIONS": "3",
        "ACTIONFLOWS_RETRY_DELAYS": "1s,2s",
        "ACTIONFLOWS_SF_EMU_LOGIN_URL": emu.url,
        "ACTIONFLOWS_SF_EMU_CLIENT_ID": creds.client_id,
        "ACTIONFLOWS_SF_EMU_USERNAME": creds.username,
        "ACTIONFLOWS_SF_EMU_PRIVATE_KEY": creds.private_key_pem,
        "ACTIONFLOWS_SF_EMU_AUDIENCE": "https://login.salesforce.com",
        "ACTIONFLOWS_SF_EMU_API_VERSION": emu.api_version,
        "ACTIONFLOWS_HTTP_PORT": "0",  # several workers on one host: any free port each
    }


def start_worker(env: dict[str, str], flows: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "agents.cli", "worker", "--flows", str(flows)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the worker and wait for it without blocking the loop the emulator serves on."""
    process.send_signal(sig)
    try:
        await asyncio.to_thread(process.wait, 60)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait, 10)
        raise AssertionError(f"the worker ignored {sig.name} for 60s") from None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "sigkill"])
async def test_a_restarted_worker_finishes_the_stream_without_duplicates(
    kafka: str, unique: str, tmp_path: Path, slow_emulator: Emulator, sig: signal.Signals
) -> None:
    """Stop the worker mid-stream, restart it: every event ran, each lead exists once."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    env = worker_env(kafka, unique, slow_emulator)
    prefix = env["ACTIONFLOWS_TOPIC_PREFIX"]
    await create_topics(kafka, [f"{prefix}.tickets"], partitions=3)
    events = [
        (f"T{i % 17}".encode(), ticket_created(f"e{i}", f"T{i % 17}", f"p{i}@example.com"))
        for i in range(EVENTS)
    ]
    half = EVENTS // 2
    await produce(kafka, f"{prefix}.tickets", events[:half])
    log = tmp_path / "worker.log"

    first = start_worker(env, flows, log)
    try:
        await wait_for(
            lambda: _leads_at_least(slow_emulator, 10),
            timeout_s=60,
            what="the first worker to create 10 leads",
        )
    finally:
        await stop(first, sig)
    # The second half arrives while no worker runs: the restart must pick up where the first
    # stopped (its committed offsets), redo what was in flight, and create nothing twice.
    await produce(kafka, f"{prefix}.tickets", events[half:])
    second = start_worker(env, flows, log)
    try:
        await wait_for(
            lambda: _leads_at_least(slow_emulator, EVENTS),
            timeout_s=120,
            what=f"{EVENTS} leads after the restart\n{log.read_text()[-3000:]}",
        )
    finally:
        await stop(second, signal.SIGTERM)
    emails = [lead["Email"] for lead in slow_emulator.records("Lead")]
    assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(EVENTS))


async def _leads_at_least(emu: Emulator, count: int) -> bool:
    return len(emu.records("Lead")) >= count


async def test_random_kills_with_lost_responses_leave_every_effect_exactly_once(
    kafka: str, unique: str, tmp_path: Path
) -> None:
    """Three SIGKILLs at seeded-random points while Salesforce loses 5% of write responses after
    committing them; then a replay of the whole input topic. Each event's lead exists once."""
    rng = random.Random(20261125)
    faults = (
        FaultRule(
            "fail_after_commit",
            method="PATCH",
            path_regex="Lead/Actionflows_Key__c",
            probability=0.05,
        ),
    )
    async with Emulator(EmulatorConfig(seed=4, latency_ms=10.0, faults=faults)) as emu:
        flows = tmp_path / "flows"
        flows.mkdir()
        (flows / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
        env = worker_env(kafka, unique, emu)
        tickets = f"{env['ACTIONFLOWS_TOPIC_PREFIX']}.tickets"
        await create_topics(kafka, [tickets], partitions=3)
        await produce(
            kafka,
            tickets,
            [
                (f"T{i % 23}".encode(), ticket_created(f"e{i}", f"T{i % 23}", f"p{i}@example.com"))
                for i in range(EVENTS)
            ],
        )
        log = tmp_path / "worker.log"
        for kill in range(3):
            target = min(EVENTS - 1, len(emu.records("Lead")) + rng.randint(5, 30))
            worker = start_worker(env, flows, log)
            try:
                await wait_for(
                    lambda target=target: _leads_at_least(emu, target),  # type: ignore[misc]
                    timeout_s=60,
                    what=f"kill {kill}: {target} leads\n{log.read_text()[-2000:]}",
                )
            finally:
                await stop(worker, signal.SIGKILL)

        worker = start_worker(env, flows, log)
        try:
            await wait_for(
                lambda: _leads_at_least(emu, EVENTS),
                timeout_s=120,
                what=f"{EVENTS} leads\n{log.read_text()[-3000:]}",
            )
            replayed = await asyncio.to_thread(
                replay_main, ["--topic", tickets, "--all", "--quiet", "--bootstrap-servers", kafka]
            )
            assert replayed == 0
            results = f"{env['ACTIONFLOWS_TOPIC_PREFIX']}.run-results"
            await wait_for(
                lambda: _succeeded_runs_at_least(kafka, results, 2 * EVENTS),
                timeout_s=120,
                what="every replayed event to run again",
            )
        finally:
            await stop(worker, signal.SIGTERM)
        emails = [lead["Email"] for lead in emu.records("Lead")]
        assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(EVENTS))


async def _succeeded_runs_at_least(kafka: str, topic: str, count: int) -> bool:
    records = await read_slice(kafka, topic)
    return sum(orjson.loads(r.value)["status"] == "succeeded" for r in records) >= count
