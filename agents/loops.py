"""The event loop the long-running processes run on: uvloop by default, asyncio's own on request.

The worker spends a tenth of its CPU in the event loop's own machinery (handles, tasks,
futures, socket writes); uvloop does that work in C. Two paired runs of create-lead at 0 ms
(20,000 events each, bench.e2e) measured 12% and 17% less worker CPU per event on uvloop.
``ACTIONFLOWS_EVENT_LOOP=asyncio`` (read by :func:`agents.settings.event_loop_from_env`) runs on
asyncio's loop instead, should uvloop misbehave somewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import uvloop

T = TypeVar("T")

EventLoopName = Literal["uvloop", "asyncio"]
#: Name prefixes of the threads an event loop's default executor starts (asyncio's, uvloop's).
EXECUTOR_THREADS = ("asyncio_", "uvloop_")


def run(main: Coroutine[Any, Any, T], loop: EventLoopName = "uvloop") -> T:
    """``asyncio.run(main)`` on the loop named."""
    with asyncio.Runner(loop_factory=_factory(loop)) as runner:
        return runner.run(main)


def _factory(loop: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    return None if loop == "asyncio" else uvloop.new_event_loop
