"""The event loop the worker and the ingest run on: uvloop by default, asyncio's on request."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop

from agents import loops
from agents.cli import _lingering
from agents.settings import event_loop_from_env


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
