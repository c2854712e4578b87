"""Runs a :class:`~bench.plan.Plan` on one broker and collects every run's figures.

Order: the raw ceiling; then, for each emulator latency (one emulator process each), the flows'
main figures, the window sweep, the latency sweep, the naive baseline, the producer settings (in
turning rounds, the worker's own among them) and the peak-memory runs; then the fair ceiling of
each flow, which needs the records per event the flow's runs measured.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.app import create_app
from agents.settings import WorkerSettings
from bench import codecs, fair_ceiling, naive, raw_ceiling
from bench.children import EmulatorHandle, emulator_process
from bench.codecs import CodecResult
from bench.e2e import FlowRun, FlowSetting, run_flow
from bench.fair_ceiling import FairRun
from bench.naive import NaiveRun
from bench.plan import Plan
from bench.raw_ceiling import CeilingResult

MAX_EVENTS = 400_000  # a backlog is never grown past this, whatever the rate


@dataclass(slots=True)
class Figure:
    """One measured setting: its runs, and the median of any figure over them."""

    # "main" (with latency at half load), "window", "latency", "rss", "producer", "processes"
    kind: str
    flow: str
    latency_ms: float
    window: int | None  # as configured; None: the worker's default
    runs: list[FlowRun] = field(default_factory=list)
    variant: str = ""  # "producer" figures: which producer settings

    def median(self, figure: Callable[[FlowRun], float | None]) -> float:
        values = [v for run in self.runs if (v := figure(run)) is not None]
        return statistics.median(values) if values else math.nan


@dataclass(slots=True)
class Results:
    plan: Plan
    started: str
    seconds: float = 0.0
    raw: list[CeilingResult] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    naive: list[NaiveRun] = field(default_factory=list)
    fair: dict[str, list[FairRun]] = field(default_factory=dict)
    ingest: str | None = None  # bench/ingest.py's figure as Markdown, if that module exists
    codecs: list[CodecResult] = field(default_factory=list)
    producer: str = ""  # the worker's own producer settings (agents/app.py), described

    def figure(
        self, kind: str, flow: str, latency_ms: float, window: int | None = None
    ) -> Figure | None:
        for figure in self.figures:
            if (figure.kind, figure.flow, figure.latency_ms, figure.window) == (
                kind,
                flow,
                latency_ms,
                window,
            ):
                return figure
        return None


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


class Runner:
    def __init__(self, bootstrap: str, plan: Plan, *, profile_dir: Path | None = None) -> None:
        self.bootstrap = bootstrap
        self.plan = plan
        self.profile_dir = profile_dir
        self.results = Results(
            plan,
            started=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            producer=_worker_producer(),
        )
        self._sizes: dict[tuple[str, float, int | None, bool, int], int] = {}

    async def run(self) -> Results:
        started = time.monotonic()
        plan = self.plan
        self.results.codecs = codecs.measure()
        for _ in range(plan.runs):
            ceiling = await raw_ceiling.measure(self.bootstrap, records=plan.raw_records)
            log(f"raw ceiling: {ceiling.per_second:,.0f} records/s")
            self.results.raw.append(ceiling)
        for latency in plan.all_latencies():
            with emulator_process(latency) as emulator:
                await self._at_latency(emulator, latency)
        for flow in plan.flows:
            await self._fair(flow)
        await self._ingest()
        self.results.seconds = time.monotonic() - started
        return self.results

    async def _at_latency(self, emulator: EmulatorHandle, latency: float) -> None:
        plan = self.plan
        for flow in plan.flows:
            if latency in plan.latencies:
                await self._figure(emulator, "main", flow, latency, None, paced=True)
            if latency == min(plan.latencies):
                for processes in plan.processes:
                    await self._figure(
                        emulator, "processes", flow, latency, None, processes=processes
                    )
            elif latency in plan.latency_sweep:
                await self._figure(emulator, "latency", flow, latency, None)
            if latency == plan.window_latency:
                default = self.results.figure("main", flow, latency) or self.results.figure(
                    "latency", flow, latency
                )
                measured = default.runs[0].window if default else None
                for window in (w for w in plan.windows if w != measured):
                    await self._figure(emulator, "window", flow, latency, window)
            if latency in plan.latencies:
                for _ in range(plan.runs):
                    run = await naive.measure(
                        self.bootstrap,
                        emulator,
                        flow=flow,
                        latency_ms=latency,
                        events=max(plan.min_events, 20_000),
                        seconds=plan.naive_seconds,
                    )
                    log(f"naive {flow} {latency:g} ms: {run.events_per_s:,.0f} events/s")
                    self.results.naive.append(run)
            if latency == 0 and flow == plan.flows[0] and plan.producer_variants:
                await self._producers(emulator, flow, latency)
            if latency == 0 and plan.rss_events:
                setting = FlowSetting(flow, latency, plan.rss_events)
                run = await run_flow(self.bootstrap, emulator, setting)
                log(f"peak RSS {flow} at {run.events:,} events: {run.peak_rss_mb:,.0f} MB")
                self.results.figures.append(Figure("rss", flow, latency, None, [run]))

    async def _figure(
        self,
        emulator: EmulatorHandle,
        kind: str,
        flow: str,
        latency: float,
        window: int | None,
        *,
        paced: bool = False,
        processes: int = 1,
    ) -> None:
        figure = Figure(kind, flow, latency, window)
        while len(figure.runs) < self.plan.runs:
            await self._run_into(emulator, figure, paced=paced, processes=processes)
        self.results.figures.append(figure)

    async def _producers(self, emulator: EmulatorHandle, flow: str, latency: float) -> None:
        """The worker's own producer settings against each variant, in rounds of one run each.

        The order turns by one every round, so no setting always runs first or last: a slow
        spell of the machine falls on all of them alike, not on the ones that run after the
        main figures (which is what made faust's defaults look faster when they ran apart).
        """
        settings: dict[str, Mapping[str, Any]] = {"": {}, **self.plan.producer_variants}
        figures = {name: Figure("producer", flow, latency, None, variant=name) for name in settings}
        names = list(settings)
        for round_ in range(self.plan.runs):
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                await self._run_into(emulator, figures[name], producer=settings[name])
        self.results.figures.extend(figures.values())

    async def _run_into(
        self,
        emulator: EmulatorHandle,
        figure: Figure,
        *,
        paced: bool = False,
        producer: Mapping[str, Any] | None = None,
        processes: int = 1,
    ) -> None:
        """One kept run of ``figure``'s setting, added to it; a run shorter than the plan's
        minimum is thrown away and the backlog grown for it and for the runs after it."""
        plan = self.plan
        flow, latency, window = figure.flow, figure.latency_ms, figure.window
        key = (flow, latency, window, paced, processes)
        events = self._sizes.get(key, plan.min_events)
        profile = None
        if self.profile_dir and figure.kind == "main" and latency == 0:
            profile = self.profile_dir / f"profile-{flow}.pstats"
        while True:
            setting = FlowSetting(
                flow,
                latency,
                events,
                window=window,
                paced=paced,
                min_paced_events=plan.min_events,
                min_paced_seconds=plan.min_seconds,
                profile=profile,
                producer=producer or {},
                processes=processes,
            )
            run = await run_flow(self.bootstrap, emulator, setting)
            log(_describe(f"{figure.kind} {figure.variant}".strip(), run))
            if run.seconds < plan.min_seconds and events < MAX_EVENTS:
                events = min(MAX_EVENTS, math.ceil(run.events_per_s * plan.min_seconds * 1.3))
                self._sizes[key] = events
                log(f"  {run.seconds:.1f} s is too short: {events:,} events from now on")
                continue
            figure.runs.append(run)
            return

    async def _fair(self, flow: str) -> None:
        plan = self.plan
        main = self.results.figure("main", flow, min(plan.latencies))
        per_event = main.median(lambda r: r.records_per_event) if main else 3.0
        copies = fair_ceiling.copies_for(per_event)
        events = plan.min_events
        runs: list[FairRun] = []
        while len(runs) < plan.runs:
            run = await fair_ceiling.measure(self.bootstrap, events=events, copies=copies)
            log(f"fair ceiling {flow} ({copies} records/event): {run.events_per_s:,.0f} events/s")
            if run.seconds < plan.min_seconds and events < MAX_EVENTS:
                events = min(MAX_EVENTS, math.ceil(run.events_per_s * plan.min_seconds * 1.3))
                log(f"  {run.seconds:.1f} s is too short: {events:,} events from now on")
                continue
            runs.append(run)
        self.results.fair[flow] = runs

    async def _ingest(self) -> None:
        """The webhook ingest's figure, when bench/ingest.py (the ingest work) is present: its
        ``measure(bootstrap)`` coroutine runs here and what it returns goes in the report."""
        try:
            from bench import ingest  # type: ignore[attr-defined]
        except ImportError:
            return
        result = await ingest.measure(self.bootstrap)
        self.results.ingest = f"{ingest.HEADER}\n{result.row()}"  # a Markdown table
        log(f"ingest: {result.accepted_per_s:,.0f} webhooks/s, p99 {result.p99_ms:.1f} ms")


def _worker_producer() -> str:
    """The worker's producer settings, as agents/app.py makes them."""
    conf = create_app(WorkerSettings(bootstrap_servers="localhost:9092")).conf
    return (
        f"{conf.producer_compression_type or 'no compression'}, "
        f"{conf.producer_linger * 1000:g} ms linger, {conf.producer_max_batch_size // 1024} KB batches"
    )


def _describe(kind: str, run: FlowRun) -> str:
    text = (
        f"{kind} {run.flow} {run.latency_ms:g} ms W={run.window} x{run.processes}: "
        f"{run.events:,} events, "
        f"{run.events_per_s:,.0f} events/s, {run.cpu_us_per_event:,.0f} µs CPU/event, "
        f"{run.api_calls_per_event:.3f} calls/event, {run.peak_rss_mb:,.0f} MB"
    )
    if run.latency:
        lat = run.latency
        text += f"; at {lat.rate:,.0f}/s p50 {lat.p50_ms:.0f} p99 {lat.p99_ms:.0f} ms"
        if lat.run_p99_ms is not None:
            text += f" (runs alone: p99 {lat.run_p99_ms:.0f} ms)"
    return text
