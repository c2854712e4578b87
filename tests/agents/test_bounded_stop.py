"""Each part of a worker's stop is bounded: one that fails, hangs or ends cancelled does not keep
the rest from stopping (a CI run once saw the ledger's consumer end its stop with a
CancelledError while no broker answered, which aborted the whole stop)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents.service import _bounded


async def _cancelled_inside() -> None:
    task = asyncio.ensure_future(asyncio.Event().wait())
    task.cancel()
    await task  # raises CancelledError, as aiokafka's fetcher.close() can


async def _hangs() -> None:
    await asyncio.Event().wait()


async def _fails() -> None:
    raise RuntimeError("cannot close")


@pytest.mark.parametrize("stop", [_cancelled_inside, _hangs, _fails])
async def test_a_part_that_does_not_stop_cleanly_does_not_stop_the_rest(
    stop: object, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []
    await _bounded("the part", stop(), 0.05)  # type: ignore[operator]
    after.append("next part")
    assert after == ["next part"]
    assert "the part" in caplog.text


async def test_negative_control_awaiting_directly_lets_the_cancellation_through() -> None:
    with pytest.raises(asyncio.CancelledError):
        await _cancelled_inside()


async def test_a_thread_that_outlives_the_stop_does_not_keep_the_worker_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """faust's consumer thread, still retrying unreachable brokers after the stop gave up on
    it: the worker exits anyway (os._exit) instead of Python waiting for the thread."""
    from agents import cli

    exits: list[int] = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    monkeypatch.setattr(cli.logging, "shutdown", lambda: None)  # pytest's handlers stay open
    monkeypatch.setattr(cli, "THREADS_GRACE_S", 0.05)
    await cli._leave_lingering_threads()
    assert exits == []  # negative control: no thread lingers, nothing is forced
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="consumer-like")
    thread.start()
    try:
        await cli._leave_lingering_threads()
    finally:
        release.set()
        thread.join()
    assert exits == [0]
