"""The benchmark's Markdown: the run's tables, and the issue's targets marked met or not met.

The same text goes to ``bench/results/<date>.md`` and, between the markers, into
``docs/benchmarks.md``, whose prose around the markers is written by hand.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable

from bench.e2e import FlowRun
from bench.runner import Figure, Results

BEGIN = "<!-- bench:begin (written by make bench; edit the prose outside these markers) -->"
END = "<!-- bench:end -->"


def _n(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _runs(figure: Figure, of: Callable[[FlowRun], float]) -> str:
    return " / ".join(_n(of(run)) for run in figure.runs)


def _latency(figure: Figure) -> str:
    p50 = figure.median(lambda r: r.latency.p50_ms if r.latency else None)
    p95 = figure.median(lambda r: r.latency.p95_ms if r.latency else None)
    p99 = figure.median(lambda r: r.latency.p99_ms if r.latency else None)
    rate = figure.median(lambda r: r.latency.rate if r.latency else None)
    events = figure.median(lambda r: r.latency.events if r.latency else None)
    run_p99 = figure.median(lambda r: r.latency.run_p99_ms if r.latency else None)
    if math.isnan(p50):
        return "- | - | - | -"
    alone = "" if math.isnan(run_p99) else f" ({_n(run_p99)} ms)"
    return f"{_n(rate)}/s x {_n(events)} | {_n(p50)} ms | {_n(p95)} ms | {_n(p99)} ms{alone}"


def fair_per_s(results: Results, flow: str) -> float:
    runs = results.fair.get(flow) or []
    return statistics.median(r.events_per_s for r in runs) if runs else math.nan


def render(results: Results, *, note: str, command: str, plots: list[str]) -> str:
    plan = results.plan
    lines = [
        f"## Benchmark of {results.started}",
        "",
        f"**{note}**",
        "",
        f"Command: `{command}`, {results.seconds / 60:.0f} minutes. Machine: {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, {platform.system()}; the broker (one node), "
        "the emulator and the worker each in their own process on this machine. Every figure is "
        f"the median of {plan.runs} run(s) of at least {plan.min_events:,} events over at least "
        f"{plan.min_seconds:g} s (the runs' own values follow a figure where it helps).",
        "",
        "### Ceilings",
        "",
        "| ceiling | what moves | figure |",
        "|---|---|---|",
    ]
    raw = statistics.median(r.per_second for r in results.raw) if results.raw else math.nan
    raw_runs = " / ".join(_n(r.per_second) for r in results.raw)
    lines.append(
        "| raw aiokafka loop | 600 B records, 1 partition, acks=all, one out per one in | "
        f"**{_n(raw)} records/s** ({raw_runs}) |"
    )
    for flow, runs in results.fair.items():
        copies = runs[0].copies if runs else 0
        lines.append(
            f"| fair: faust agent, no work | {flow}'s events, {copies} records out per event "
            f"(as the flow writes), acks=all | **{_n(fair_per_s(results, flow))} events/s** "
            f"({' / '.join(_n(r.events_per_s) for r in runs)}) |"
        )
    lines += [
        "",
        "### The flows",
        "",
        "| flow | emulator | W | events/s (runs) | share of fair ceiling | latency fed at half rate: "
        "rate x events | p50 | p95 | p99 (p99 of the runs alone) | API calls/event: backlog (half rate) | "
        "worker CPU µs/event | peak RSS | "
        "records out/event |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for figure in (f for f in results.figures if f.kind == "main"):
        rate = figure.median(lambda r: r.events_per_s)
        share = rate / fair_per_s(results, figure.flow)
        lines.append(
            f"| {figure.flow} | {figure.latency_ms:g} ms | {figure.runs[0].window} | "
            f"**{_n(rate)}** ({_runs(figure, lambda r: r.events_per_s)}) | {_n(share * 100)}% | "
            f"{_latency(figure)} | {figure.median(lambda r: r.api_calls_per_event):.3f}"
            f"{_paced_calls(figure)} | "
            f"{_n(figure.median(lambda r: r.cpu_us_per_event))} | "
            f"{_n(figure.median(lambda r: r.peak_rss_mb))} MB | "
            f"{figure.median(lambda r: r.records_per_event):.2f} |"
        )
    lines += _processes(results)
    lines += _producers(results)
    lines += _sweep(results, "window", "In-flight window W")
    lines += _sweep(results, "latency", "Emulator latency")
    if results.naive:
        lines += [
            "",
            "### Naive baseline",
            "",
            "A plain aiokafka consumer making the flow's REST calls with aiohttp, each awaited "
            "before the next (`bench/naive.py`); it stops after "
            f"{plan.naive_seconds:g} s, so at 50 ms it sees fewer events than the flows' runs.",
            "",
            "| flow | emulator | events/s (runs) | events per run | API calls/event |",
            "|---|---|---|---|---|",
        ]
        for flow in plan.flows:
            for latency in plan.latencies:
                runs = [r for r in results.naive if (r.flow, r.latency_ms) == (flow, latency)]
                if runs:
                    rate = statistics.median(r.events_per_s for r in runs)
                    lines.append(
                        f"| {flow} | {latency:g} ms | **{_n(rate)}** "
                        f"({' / '.join(_n(r.events_per_s) for r in runs)}) | "
                        f"{' / '.join(_n(r.events) for r in runs)} | "
                        f"{statistics.median(r.api_calls_per_event for r in runs):.2f} |"
                    )
    rss = [f for f in results.figures if f.kind == "rss"]
    if rss:
        lines += [
            "",
            "### Memory",
            "",
            "| flow | events | worker peak RSS | events/s |",
            "|---|---|---|---|",
        ]
        for figure in rss:
            run = figure.runs[0]
            lines.append(
                f"| {figure.flow} (0 ms) | {run.events:,} | **{_n(run.peak_rss_mb)} MB** | "
                f"{_n(run.events_per_s)} |"
            )
    if results.ingest is not None:
        lines += ["", "### Webhook ingest", "", f"{results.ingest}"]
    lines += ["", "### Targets (issue 12)", "", *targets(results)]
    if plots:
        lines += ["", "### Plots", ""]
        lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def _processes(results: Results) -> list[str]:
    """Several worker processes in one group against one, same flow and latency."""
    figures = [f for f in results.figures if f.kind == "processes"]
    if not figures:
        return []
    lines = [
        "",
        "### Worker processes",
        "",
        "Several workers in one consumer group, started before the backlog is written (so no "
        "rebalance falls in the measured span), against one worker. CPU and peak RSS are the "
        "processes' sums.",
        "",
        "| flow | emulator | processes | events/s (runs) | one process | API calls/event | "
        "worker CPU µs/event | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        one = results.figure("main", figure.flow, figure.latency_ms)
        single = one.median(lambda r: r.events_per_s) if one else math.nan
        lines.append(
            f"| {figure.flow} | {figure.latency_ms:g} ms | {figure.runs[0].processes} | "
            f"**{_n(figure.median(lambda r: r.events_per_s))}** "
            f"({_runs(figure, lambda r: r.events_per_s)}) | {_n(single)} | "
            f"{figure.median(lambda r: r.api_calls_per_event):.3f} | "
            f"{_n(figure.median(lambda r: r.cpu_us_per_event))} | "
            f"{_n(figure.median(lambda r: r.peak_rss_mb))} MB |"
        )
    return lines


def _producers(results: Results) -> list[str]:
    """The worker's producer settings (agents/app.py) against the variants, same flow."""
    variants = [f for f in results.figures if f.kind == "producer"]
    if not variants:
        return []
    flow = variants[0].flow
    lines = [
        "",
        "### Producer settings",
        "",
        f"{flow} at {variants[0].latency_ms:g} ms, the worker's producer only (the ledger's is "
        "its own). The settings run in rounds of one run each, the order turning every round, "
        "so that none always runs first or last.",
        "",
        "| producer | events/s (runs) | worker CPU µs/event |",
        "|---|---|---|",
    ]
    for figure in variants:  # variant "": the worker's own settings
        name = figure.variant or f"{results.producer} (agents/app.py)"
        lines.append(
            f"| {name} | **{_n(figure.median(lambda r: r.events_per_s))}** "
            f"({_runs(figure, lambda r: r.events_per_s)}) | "
            f"{_n(figure.median(lambda r: r.cpu_us_per_event))} |"
        )
    return [*lines, *_codecs(results)]


def _codecs(results: Results) -> list[str]:
    if not results.codecs:
        return []
    sizes = sorted({c.records for c in results.codecs})
    lines = [
        "",
        "Compressing one producer batch of step-output records (`bench/codecs.py`, aiokafka's "
        "own codecs, in process): CPU µs per record, and bytes saved (uncompressed / compressed).",
        "",
        "| codec | " + " | ".join(f"{n} records a batch" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for codec in dict.fromkeys(c.codec for c in results.codecs):
        cells = [
            f"{c.us_per_record:.1f} µs, x{c.ratio:.1f}"
            for n in sizes
            for c in results.codecs
            if (c.codec, c.records) == (codec, n)
        ]
        lines.append(f"| {codec} | " + " | ".join(cells) + " |")
    return lines


def _sweep(results: Results, kind: str, title: str) -> list[str]:
    figures = [f for f in results.figures if f.kind == kind]
    if not figures:
        return []
    lines = [
        "",
        f"### {title}",
        "",
        "| flow | emulator | W | events/s (runs) | API calls/event | worker CPU µs/event |",
        "|---|---|---|---|---|---|",
    ]
    for figure in figures:
        lines.append(
            f"| {figure.flow} | {figure.latency_ms:g} ms | {figure.runs[0].window} | "
            f"**{_n(figure.median(lambda r: r.events_per_s))}** "
            f"({_runs(figure, lambda r: r.events_per_s)}) | "
            f"{figure.median(lambda r: r.api_calls_per_event):.3f} | "
            f"{_n(figure.median(lambda r: r.cpu_us_per_event))} |"
        )
    return lines


def _paced_calls(figure: Figure) -> str:
    paced = figure.median(lambda r: r.paced_api_calls_per_event)
    return "" if math.isnan(paced) else f" ({paced:.3f})"


def targets(results: Results) -> list[str]:
    """The issue's targets, each met or not met, from this run's figures."""
    rows = ["| measure | target | measured | |", "|---|---|---|---|"]

    def main(flow: str, latency: float) -> Figure | None:
        return results.figure("main", flow, latency)

    def rate_row(flow: str, latency: float, floor: float, calls: float | None = None) -> None:
        figure = main(flow, latency)
        target = f"≥ {floor:,.0f} events/s" + (f", ≤ {calls} API calls/event" if calls else "")
        if figure is None:
            rows.append(f"| {flow}, emulator at {latency:g} ms | {target} | not measured | - |")
            return
        rate = figure.median(lambda r: r.events_per_s)
        per_event = figure.median(lambda r: r.api_calls_per_event)
        met = rate >= floor and (calls is None or per_event <= calls)
        measured = f"{_n(rate)} events/s" + (f", {per_event:.3f} calls/event" if calls else "")
        rows.append(
            f"| {flow}, emulator at {latency:g} ms | {target} | {measured} | "
            f"{'**met**' if met else '**not met**'} |"
        )

    rate_row("create-lead", 0, 5000)
    rate_row("create-lead", 50, 4000)
    rate_row("find-else-create", 0, 3000, 0.1)
    rate_row("find-else-create", 50, 2500, 0.1)
    for figure in (f for f in results.figures if f.kind == "main"):
        bound = 2 * figure.latency_ms + 50
        p99 = figure.median(lambda r: r.latency.p99_ms if r.latency else None)
        met = p99 <= bound
        rows.append(
            f"| p99 latency at half load, {figure.flow} at {figure.latency_ms:g} ms | "
            f"≤ {bound:g} ms | {_n(p99)} ms | {'**met**' if met else '**not met**'} |"
        )
    for flow in results.fair:
        figure = main(flow, 0)
        if figure is None:
            continue
        share = figure.median(lambda r: r.events_per_s) / fair_per_s(results, flow)
        rows.append(
            f"| share of the fair ceiling, {flow} at 0 ms | ≥ 50% | {_n(share * 100)}% | "
            f"{'**met**' if share >= 0.5 else '**not met**'} |"
        )
    return rows


def splice(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced (the markers appended if absent)."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return f"{head}{BEGIN}\n{generated}{END}{tail}"
    return f"{document.rstrip()}\n\n{BEGIN}\n{generated}{END}\n"
