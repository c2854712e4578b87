"""End-to-end runs: events through the worker to Salesforce (the emulator) and back to Kafka.

Each run is fresh: new topics, a new consumer group, the emulator reset. The backlog is on the
input topic before the worker starts, and the worker runs in its own process (the real
:class:`~agents.service.Service`, as ``actionflows worker`` starts it). With several worker
processes in one group, they start first and the backlog is written once the group is stable,
so that no rebalance falls inside the measured span. So:

- **events/s** is the backlog over the time between its first and its last run result (both
  producer timestamps, written by the worker), startup excluded;
- **CPU µs per event** is the worker processes' CPU time (psutil) over the middle 80% of the
  backlog, divided by the events completed meanwhile: steady state, no startup, no tail;
- **peak RSS** is the largest resident set sampled (10 Hz) during the run, summed over the
  worker processes;
- **API calls per event** is the emulator's count of API calls over the events;
- **latency** (optional): after the backlog, events are fed at half the rate just measured, for
  at least as many events and seconds as the backlog needs; latency is the run result's
  timestamp minus the input record's (one machine, one clock).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import uuid
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import agents.app
from agents.service import Service, ServiceConfig
from agents.settings import WorkerSettings, engine_from_env
from bench.children import ChildProcess, EmulatorHandle, child_processes
from bench.kafka import (
    PARTITIONS,
    Mark,
    Progress,
    create_topics,
    event,
    produce,
    records_by_event,
    timestamps_by_event,
    topic_sizes,
    wait_for_count,
    wait_for_group,
)
from sfemulator import emulator_connection
from topics.catalogue import Catalogue, CatalogueSettings, TopicRole

FLOWS = Path(__file__).with_name("flows")


def with_window(config: ServiceConfig, window: int) -> ServiceConfig:
    """The worker with an in-flight window of ``window`` events (``EngineSettings.max_in_flight``,
    ``ACTIONFLOWS_MAX_IN_FLIGHT``)."""
    return replace(config, engine=replace(config.engine, max_in_flight=window))


def window_of(config: ServiceConfig) -> int:
    """The in-flight window a config runs with."""
    return config.engine.max_in_flight


@dataclass(frozen=True, slots=True)
class Latency:
    rate: float  # events/s fed
    events: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # p99 of the runs' own durations (run results' duration_ms): the part of the latency spent
    # running the flow, Salesforce calls included. A high p99 with a low run_p99 is a wait
    # before the run (fetching, the window) or after it (publishing).
    run_p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class FlowRun:
    flow: str
    latency_ms: float
    window: int
    events: int
    seconds: float  # first to last run result of the backlog
    cpu_us_per_event: float
    peak_rss_mb: float
    api_calls_per_event: float  # over the backlog: at the saturated rate events_per_s counts
    records_per_event: float  # records the worker wrote (outputs, results, ledger) per event
    latency: Latency | None
    paced_api_calls_per_event: float | None = None  # over the feed at half rate, if paced
    processes: int = 1  # worker processes in the group; CPU and RSS are their sums

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True, slots=True)
class FlowSetting:
    flow: str
    latency_ms: float
    events: int
    window: int | None = None  # None: the worker's default
    paced: bool = False  # measure latency at half the saturated rate after the backlog
    min_paced_events: int = 0
    min_paced_seconds: float = 0.0
    profile: Path | None = None  # write a cProfile of the worker here
    producer: Mapping[str, Any] = field(default_factory=dict)  # faust producer settings to change
    # The worker's fetch wait in ms, if not agents.app's (bench/stall.py compares the two).
    fetch_wait_ms: int | None = None
    # Worker processes in one group. With more than one, the workers start first and the
    # backlog is written once the group is stable, so no rebalance falls in the measured span.
    processes: int = 1


@contextlib.asynccontextmanager
async def worker(
    spec: tuple[ServiceConfig, Mapping[str, Any], int | None],
) -> AsyncIterator[Service]:
    """The worker (in its child process), its faust producer settings and its consumer's fetch
    wait changed as asked."""
    config, producer, fetch_wait_ms = spec
    if fetch_wait_ms is not None:
        agents.app.FETCH_MAX_WAIT_MS = fetch_wait_ms  # this child's own copy of the module
    service = Service(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # faust warns that a setting changes after creation
        for name, value in producer.items():
            setattr(service.app.conf, name, value)
    async with service:
        yield service


def _config(
    bootstrap: str, emulator: EmulatorHandle, setting: FlowSetting, prefix: str
) -> ServiceConfig:
    config = ServiceConfig(
        worker=WorkerSettings(
            bootstrap_servers=bootstrap,
            app_id=prefix,
            flows_dir=FLOWS / setting.flow,
            topic_partitions=PARTITIONS,
        ),
        connection=emulator_connection(emulator.url, emulator.credentials, emulator.api_version),
        topics=CatalogueSettings(
            prefix=prefix, partitions=PARTITIONS, retry_delays_ms=(1000, 5000)
        ),
        engine=engine_from_env(),  # as the worker's command reads it (ACTIONFLOWS_* settings)
    )
    return with_window(config, setting.window) if setting.window else config


async def run_flow(bootstrap: str, emulator: EmulatorHandle, setting: FlowSetting) -> FlowRun:
    """One run of ``setting``: the backlog, then (if asked) the paced feed."""
    await emulator.reset()
    tag = uuid.uuid4().hex[:8]
    config = _config(bootstrap, emulator, setting, f"bench-{tag}")
    catalogue = Catalogue.build(config.topics)
    tickets = catalogue.inputs[0].name
    results = catalogue.one(TopicRole.RUN_RESULTS).name
    written = [
        results,
        catalogue.one(TopicRole.STEP_OUTPUTS).name,
        catalogue.one(TopicRole.LEDGER).name,
    ]
    await create_topics(bootstrap, [tickets])
    backlog_events = [event(i, tag) for i in range(setting.events)]
    if setting.processes == 1:
        await produce(bootstrap, tickets, backlog_events)
    calls_before = await emulator.api_calls()
    total = setting.events
    paced_rate = 0.0
    timeout_s = max(300.0, setting.events / 20)
    spec = (config, setting.producer, setting.fetch_wait_ms)
    async with (
        child_processes(worker, spec, setting.processes, profile=setting.profile) as workers,
        Progress(bootstrap, [results]) as progress,
    ):
        if setting.processes > 1:
            await wait_for_group(bootstrap, config.worker.app_id, setting.processes, timeout_s=120)
            await produce(bootstrap, tickets, backlog_events)
        marks = await wait_for_count(progress, setting.events, timeout_s=timeout_s)
        cpu_us = _cpu_us_per_event(workers, marks, setting.events)
        backlog_calls = await emulator.api_calls() - calls_before
        if setting.paced:
            paced_rate = _rate(marks) / 2
            paced = max(setting.min_paced_events, math.ceil(paced_rate * setting.min_paced_seconds))
            feed = [event(total + i, tag) for i in range(paced)]
            await produce(bootstrap, tickets, feed, rate=paced_rate)
            total += paced
            await wait_for_count(progress, total, timeout_s=timeout_s + paced / paced_rate)
        paced_calls = await emulator.api_calls() - calls_before - backlog_calls
        peak_rss = sum(process.peak_rss_bytes for process in workers)
    outcomes = await records_by_event(bootstrap, results)
    done = {key: stamp for key, (stamp, _) in outcomes.items()}
    sent = await timestamps_by_event(bootstrap, tickets)
    backlog = sorted(done[f"bench-{tag}-{i}"] for i in range(setting.events))
    latency = None
    if setting.paced:
        paced_ids = [f"bench-{tag}-{i}" for i in range(setting.events, total)]
        delays = [float(done[i] - sent[i]) for i in paced_ids]
        span = (max(sent[i] for i in paced_ids) - min(sent[i] for i in paced_ids)) / 1000
        latency = Latency(
            rate=paced_rate,
            events=len(delays),
            seconds=span,
            p50_ms=_percentile(delays, 50),
            p95_ms=_percentile(delays, 95),
            p99_ms=_percentile(delays, 99),
            run_p99_ms=_percentile([float(outcomes[i][1]["duration_ms"]) for i in paced_ids], 99),
        )
    return FlowRun(
        flow=setting.flow,
        latency_ms=setting.latency_ms,
        window=window_of(config),
        events=setting.events,
        seconds=max((backlog[-1] - backlog[0]) / 1000, 1e-3),
        cpu_us_per_event=cpu_us,
        peak_rss_mb=peak_rss / 2**20,
        api_calls_per_event=backlog_calls / setting.events,
        records_per_event=await topic_sizes(bootstrap, written) / total,
        latency=latency,
        paced_api_calls_per_event=paced_calls / (total - setting.events) if setting.paced else None,
        processes=setting.processes,
    )


def _rate(marks: list[Mark]) -> float:
    """Events per second between the first progress seen and the last mark."""
    first = next(m for m in marks if m.count > 0)
    last = marks[-1]
    return (last.count - first.count) / max(last.at - first.at, 1e-3)


def _cpu_us_per_event(workers: Sequence[ChildProcess], marks: list[Mark], events: int) -> float:
    """The workers' CPU per event over the middle 80% of the backlog (steady state)."""
    low, high = _time_at(marks, events * 0.1), _time_at(marks, events * 0.9)
    done = _count_at(marks, high) - _count_at(marks, low)
    if high <= low or done <= 0:
        return math.nan
    cpu_s = sum(worker.cpu_at(high) - worker.cpu_at(low) for worker in workers)
    return cpu_s / done * 1e6


def _time_at(marks: list[Mark], count: float) -> float:
    """When ``count`` records were reached, interpolated between marks."""
    for before, after in itertools.pairwise(marks):
        if before.count <= count <= after.count and after.count > before.count:
            share = (count - before.count) / (after.count - before.count)
            return before.at + share * (after.at - before.at)
    return marks[-1].at


def _count_at(marks: list[Mark], at: float) -> float:
    for before, after in itertools.pairwise(marks):
        if before.at <= at <= after.at:
            share = (at - before.at) / max(after.at - before.at, 1e-9)
            return before.count + share * (after.count - before.count)
    return float(marks[-1].count)


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
