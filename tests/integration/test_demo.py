"""`actionflows demo` runs every example flow over the samples and reaches a final outcome."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agents.demo import demo


async def test_the_demo_processes_every_sample_event(
    kafka: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sample reaches a final outcome; malformed ones are dead-lettered, others run."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka)
    output = io.StringIO()
    done, summary = await demo(
        console=Console(file=output, width=200), timeout_s=90, prefix=f"demo-{unique}"
    )
    assert done, output.getvalue()[-3000:]
    assert summary.events_in >= 21
    assert summary.runs.get("succeeded", 0) >= 10
    assert summary.records_written >= 5
    assert summary.dead_letters >= 10  # the malformed samples, at least
