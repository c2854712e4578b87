"""The event loop the worker and the ingest run on: uvloop by default, asyncio's on request."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
import uvloop

from agents import loops
from agents.app import create_app
from agents.cli import _lingering
from agents.loops import EventLoopName
from agents.settings import WorkerSettings, event_loop_from_env


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    await asyncio.to_thread(lambda: None)  # starts the loop's default executor
    assert _lingering() == []  # whichever loop, its executor's threads are not "lingering"
    return type(asyncio.get_running_loop())


def test_uvloop_by_default_and_asyncio_on_request() -> None:
    assert loops.run(_loop_type()) is uvloop.Loop
    assert not issubclass(loops.run(_loop_type(), "asyncio"), uvloop.Loop)


def test_the_setting_names_its_variable() -> None:
    assert event_loop_from_env({}) == "uvloop"
    assert event_loop_from_env({"ACTIONFLOWS_EVENT_LOOP": "AsyncIO"}) == "asyncio"
    with pytest.raises(ValueError, match="ACTIONFLOWS_EVENT_LOOP"):
        event_loop_from_env({"ACTIONFLOWS_EVENT_LOOP": "trio"})


async def _collector() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_run_tunes_the_collector_while_main_runs_and_restores_it() -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    thresholds, frozen = loops.run(_collector())
    assert thresholds == loops.GC_THRESHOLDS != before[0]
    assert frozen > before[1]  # what existed before main is out of every collection
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


async def _consumer_thread_loop(tmp_path: Path) -> tuple[type, type, bool]:
    app = create_app(WorkerSettings("127.0.0.1:9", state_dir=tmp_path))  # never connects
    thread = app.consumer._thread  # faust makes it with the consumer, started later
    try:
        return type(thread.parent_loop), type(thread.thread_loop), thread._close_thread_loop_on_stop
    finally:
        thread.thread_loop.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_faust_consumer_thread_runs_on_the_workers_kind_of_loop(
    loop: EventLoopName, tmp_path: Path
) -> None:
    parent, child, closes = loops.run(_consumer_thread_loop(tmp_path), loop)
    assert child is parent, f"the consumer thread runs on {child.__name__}, the worker on {parent}"
    assert closes, "the thread's loop is ours, so mode must be told to close it on stop"
