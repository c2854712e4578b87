"""The event loop's heartbeat: its lag measured, a held loop logged with the collector's share."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from agents.observe.health import HELD_WARNING_S, Heartbeat


class JumpingClock:
    """A monotonic clock that jumps ``jump_s`` on its fourth reading (the first beat's end),
    running the garbage collector then, as a held loop would have; otherwise it moves a tick."""

    def __init__(self, jump_s: float) -> None:
        self.now = 0.0
        self.readings = 0
        self.jump_s = jump_s

    def __call__(self) -> float:
        self.readings += 1
        if self.readings == 4:  # made, started, beat begun, beat ended
            gc.collect()
            self.now += self.jump_s
        else:
            self.now += 0.001
        return self.now


async def _first_lag(clock: JumpingClock) -> tuple[float, Heartbeat]:
    lags: asyncio.Queue[float] = asyncio.Queue()
    heartbeat = Heartbeat(interval_s=0.001, clock=clock, on_lag=lags.put_nowait)
    heartbeat.start()
    try:
        async with asyncio.timeout(5):
            return await lags.get(), heartbeat
    finally:
        await heartbeat.stop()


async def test_a_late_beat_is_measured_and_logged_with_the_collectors_share(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agents.observe.health")
    lag, heartbeat = await _first_lag(JumpingClock(jump_s=2.0))
    assert lag == pytest.approx(2.0, abs=0.01)
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("the event loop was held for 2.00s (")
    assert "of it in garbage collection" in warning
    assert heartbeat._collecting.seconds > 0  # the collection during the beat was timed
    assert heartbeat._collecting._time not in gc.callbacks  # stop removed the hook


async def test_a_beat_on_time_is_measured_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="agents.observe.health")
    lag, _ = await _first_lag(JumpingClock(jump_s=HELD_WARNING_S / 10))
    assert 0 <= lag < HELD_WARNING_S
    assert caplog.records == []


def test_the_metric_is_registered() -> None:
    from agents.observe.metrics import Metrics

    metrics = Metrics()
    metrics.loop_lag.observe(0.02)
    value = metrics.registry.get_sample_value("actionflows_event_loop_lag_seconds_count")
    assert value == 1.0
