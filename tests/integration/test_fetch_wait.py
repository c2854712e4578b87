"""Every fetch a worker sends asks the broker to wait at most FETCH_MAX_WAIT_MS, not faust's 1.5 s.

The stall it prevents needs a busy machine to appear (docs/benchmarks.md, "The stall of 1.5 s":
a fetch for the idle topics only, sent while the busy partitions' records are still buffered,
holds every partition of that broker for the whole wait). What can be checked without timing is
the cause: the wait each fetch request carries to the broker, recorded as aiokafka builds it, in
faust's consumer thread as in the ledger's reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka.consumer import fetcher

from agents.kafka_client import FETCH_MAX_WAIT_MS
from agents.service import Service
from sfemulator import Emulator, EmulatorConfig
from tests.agents.test_engine import CREATE_LEAD_FLOW
from tests.integration.test_engine_e2e import service_config
from tests.kafkatools import wait_for
from topics.catalogue import TopicRole


@pytest.fixture
async def emulator():  # type: ignore[no-untyped-def]
    async with Emulator(EmulatorConfig(seed=5)) as emu:
        yield emu


async def test_every_fetch_of_a_worker_waits_at_most_the_short_fetch_wait(
    kafka: str, unique: str, tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, set[str]]] = []  # (max wait in ms, topics) of each fetch request

    class Recorded(fetcher.FetchRequest):  # type: ignore[misc]
        def __init__(self, max_wait_time: int, *args: Any, **kwargs: Any) -> None:
            super().__init__(max_wait_time, *args, **kwargs)
            sent.append((max_wait_time, {topic for topic, _ in self.topics}))

    monkeypatch.setattr(fetcher, "FetchRequest", Recorded)
    (tmp_path / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    config = service_config(kafka, unique, tmp_path, emulator)
    async with Service(config) as service:
        inputs = {spec.name for spec in service.catalogue.inputs}
        ledger = service.catalogue.one(TopicRole.LEDGER).name

        def fetched(topics: set[str]) -> list[int]:
            return [wait for wait, asked in list(sent) if asked & topics]

        await wait_for(lambda: fetched(inputs), timeout_s=90, what="the worker to fetch its input")
        await wait_for(lambda: fetched({ledger}), timeout_s=30, what="the ledger to be tailed")
    waits = {wait for wait, _ in sent}
    assert waits == {FETCH_MAX_WAIT_MS}, (
        f"fetch requests asked the broker to wait {sorted(waits)} ms; faust's consumer would "
        f"wait 1500 ms unless agents.app gives it FETCH_MAX_WAIT_MS ({FETCH_MAX_WAIT_MS})"
    )
