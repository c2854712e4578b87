"""The event loop the long-running processes run on: uvloop by default, asyncio's own on request.

The worker spends a tenth of its CPU in the event loop's own machinery (handles, tasks,
futures, socket writes); uvloop does that work in C. Two paired runs of create-lead at 0 ms
(20,000 events each, bench.e2e) measured 12% and 17% less worker CPU per event on uvloop.
``ACTIONFLOWS_EVENT_LOOP=asyncio`` (read by :func:`agents.settings.event_loop_from_env`) runs on
asyncio's loop instead, should uvloop misbehave somewhere.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import uvloop

T = TypeVar("T")

EventLoopName = Literal["uvloop", "asyncio"]
#: Name prefixes of the threads an event loop's default executor starts (asyncio's, uvloop's).
EXECUTOR_THREADS = ("asyncio_", "uvloop_")


#: The collector's thresholds while a process runs (Python's defaults are 700, 10, 10). The
#: worker keeps thousands of events' objects in flight, and at 700 allocations per young
#: collection each collection walks them again: 2,000 collections and 2.6 to 2.9 s of a 20,000-event
#: create-lead run (bench.e2e at 0 ms, timed with gc.callbacks), the longest 150 to 160 ms.
GC_THRESHOLDS = (10_000, 10, 10)


def run(main: Coroutine[Any, Any, T], loop: EventLoopName = "uvloop") -> T:
    """``asyncio.run(main)`` on the loop named, with the collector tuned for a long-running
    process: what exists before ``main`` starts (modules, classes, settings) is frozen out of
    every collection, and young collections come every :data:`GC_THRESHOLDS` allocations.
    Both are undone when ``main`` returns."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        with asyncio.Runner(loop_factory=_factory(loop)) as runner:
            return runner.run(main)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def new_loop_like(loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    """A new event loop of the same kind as ``loop`` (for a thread of a process on ``loop``)."""
    return uvloop.new_event_loop() if isinstance(loop, uvloop.Loop) else asyncio.new_event_loop()


def _factory(loop: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    return None if loop == "asyncio" else uvloop.new_event_loop
