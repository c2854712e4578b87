"""The processes a benchmark run starts, each on its own so its CPU and memory are its own.

- :class:`EmulatorProcess`: the Salesforce emulator at a given latency, with its admin API (API
  calls counted, reset between runs) reached over HTTP like any client would.
- :class:`ChildProcess`: a worker-like process (the real worker, or the fair ceiling's relay)
  built by a factory from a picklable config. The parent samples its CPU time and resident
  memory with psutil while it runs; with ``profile`` set, the child runs under cProfile and
  writes its statistics when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import logging
import multiprocessing
import pstats
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from agents import loops
from agents.settings import event_loop_from_env
from sfemulator import DemoCredentials, Emulator, EmulatorConfig

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loops or sockets


@dataclass(frozen=True, slots=True)
class EmulatorHandle:
    url: str
    credentials: DemoCredentials
    api_version: str
    access_token: str  # for the naive baseline's third-party client

    async def api_calls(self) -> int:
        """API calls counted against the org's daily limit so far (token requests are not)."""
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/__emulator/calls") as r:
            counts = await r.json()
        return int(counts.get("api_calls", 0))

    async def reset(self) -> None:
        """Forget records and counters; sessions stay valid."""
        async with aiohttp.ClientSession() as http, http.post(f"{self.url}/__emulator/reset"):
            pass


def _serve_emulator(latency_ms: float, conn: Any) -> None:  # the child's entry point
    async def main() -> None:
        config = EmulatorConfig(
            seed=11, latency_ms=latency_ms, daily_api_limit=10**9, concurrency_limit=10**6
        )
        async with Emulator(config) as emu:
            token = emu.issue_access_token()
            conn.send(EmulatorHandle(emu.url, emu.credentials, emu.api_version, token))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


@contextlib.contextmanager
def emulator_process(latency_ms: float) -> Iterator[EmulatorHandle]:
    """The emulator in its own process, with ``latency_ms`` added to every API call."""
    conn, child = SPAWN.Pipe()
    process = SPAWN.Process(target=_serve_emulator, args=(latency_ms, child), daemon=True)
    process.start()
    try:
        yield conn.recv()
    finally:
        conn.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


Factory = Callable[[Any], AbstractAsyncContextManager[Any]]


def _serve_child(factory: Factory, config: Any, profile: Path | None, conn: Any) -> None:
    # Warnings (a rebalance, a held event loop) reach the harness's stderr, timed and named.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s (child): %(message)s"
    )
    profiler = cProfile.Profile() if profile else None

    async def main() -> None:
        async with factory(config):
            conn.send("ready")
            if profiler:
                profiler.enable()
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            if profiler:
                profiler.disable()

    loops.run(main(), event_loop_from_env())  # as the worker's command runs
    if profiler and profile:
        profiler.dump_stats(profile)
        with profile.with_suffix(".txt").open("w") as out:
            stats = pstats.Stats(str(profile), stream=out).strip_dirs()
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
    conn.send("stopped")


@dataclass(slots=True)
class Sample:
    at: float  # monotonic seconds
    cpu_s: float  # user + system CPU of the child since it started
    rss_bytes: int


@dataclass(slots=True)
class ChildProcess:
    """A factory's async context manager, entered in a child process until :meth:`stop`."""

    factory: Factory
    config: Any
    profile: Path | None = None
    samples: list[Sample] = field(default_factory=list)
    _conn: Any = None
    _process: Any = None
    _sampler: asyncio.Task[None] | None = None

    async def start(self, *, timeout_s: float = 120.0) -> None:
        self._conn, child = SPAWN.Pipe()
        args = (self.factory, self.config, self.profile, child)
        self._process = SPAWN.Process(target=_serve_child, args=args, daemon=True)
        self._process.start()
        ready = await asyncio.wait_for(asyncio.to_thread(self._conn.recv), timeout_s)
        if ready != "ready":
            raise RuntimeError(f"child process did not start: {ready!r}")
        self._sampler = asyncio.create_task(self._sample(psutil.Process(self._process.pid)))

    async def _sample(self, process: psutil.Process, every_s: float = 0.1) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            while True:
                cpu = process.cpu_times()
                rss = process.memory_info().rss
                self.samples.append(Sample(time.monotonic(), cpu.user + cpu.system, rss))
                await asyncio.sleep(every_s)  # sampling period, not synchronisation

    def cpu_at(self, at: float) -> float:
        """The child's CPU seconds at monotonic time ``at``, interpolated between samples."""
        before = [s for s in self.samples if s.at <= at]
        after = [s for s in self.samples if s.at >= at]
        if not before or not after:
            raise ValueError("no CPU samples around that time")
        low, high = before[-1], after[0]
        if high.at == low.at:
            return low.cpu_s
        return low.cpu_s + (high.cpu_s - low.cpu_s) * (at - low.at) / (high.at - low.at)

    async def stop(self, *, timeout_s: float = 60.0) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._process is None:
            return
        if self._process.is_alive():
            self._conn.send("stop")
            with contextlib.suppress(TimeoutError, EOFError):
                await asyncio.wait_for(asyncio.to_thread(self._conn.recv), timeout_s)
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()

    @property
    def peak_rss_bytes(self) -> int:
        return max((s.rss_bytes for s in self.samples), default=0)


@contextlib.asynccontextmanager
async def child_process(
    factory: Factory, config: Any, *, profile: Path | None = None
) -> AsyncIterator[ChildProcess]:
    async with child_processes(factory, config, 1, profile=profile) as (child,):
        yield child


@contextlib.asynccontextmanager
async def child_processes(
    factory: Factory, config: Any, count: int, *, profile: Path | None = None
) -> AsyncIterator[tuple[ChildProcess, ...]]:
    """``count`` children of one factory and config, started together (so workers of one
    group join it at about the same time); with ``profile``, the first is profiled."""
    children = tuple(
        ChildProcess(factory, config, profile if i == 0 else None) for i in range(count)
    )
    try:
        started = await asyncio.gather(
            *(child.start() for child in children), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome  # every start has ended: the ones that started stop below
        yield children
    finally:
        await asyncio.gather(*(child.stop() for child in children))
