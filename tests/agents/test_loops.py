"""The event loop the worker and the ingest run on: uvloop by default, asyncio's on request."""

from __future__ import annotations

import asyncio

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
