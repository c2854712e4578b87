"""The benchmark's two plots (matplotlib, PNG): throughput against the in-flight window, and
throughput against the emulator's latency. Each point is a figure's median; bars span its runs."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.runner import Figure, Results

COLOURS = {"create-lead": "tab:blue", "find-else-create": "tab:orange"}
WINDOW_PNG = "benchmarks-window.png"
LATENCY_PNG = "benchmarks-latency.png"


def _points(
    figures: list[Figure], x: Callable[[Figure], float]
) -> tuple[list[float], list[float], list[list[float]]]:
    figures = sorted(figures, key=x)
    xs = [x(f) for f in figures]
    ys = [f.median(lambda r: r.events_per_s) for f in figures]
    spread = [
        [y - min(r.events_per_s for r in f.runs) for f, y in zip(figures, ys, strict=True)],
        [max(r.events_per_s for r in f.runs) - y for f, y in zip(figures, ys, strict=True)],
    ]
    return xs, ys, spread


def draw(results: Results, directory: Path) -> list[str]:
    """Write the plots the results allow into ``directory``; their file names."""
    written = []
    plan = results.plan
    window = [f for f in results.figures if f.kind == "window"]
    if window:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for flow in plan.flows:
            mine = [f for f in window if f.flow == flow]
            mine += [
                f
                for f in results.figures
                if f.kind == "main" and f.flow == flow and f.latency_ms == plan.window_latency
            ]
            if mine:
                xs, ys, spread = _points(mine, lambda f: f.runs[0].window)
                colour = COLOURS.get(flow)
                ax.errorbar(xs, ys, yerr=spread, marker="o", capsize=3, label=flow, color=colour)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("in-flight window W (events)")
        ax.set_ylabel("events/s")
        ax.set_title(
            f"Throughput against the in-flight window, emulator at {plan.window_latency:g} ms"
        )
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / WINDOW_PNG, dpi=110)
        plt.close(fig)
        written.append(WINDOW_PNG)
    by_latency = [f for f in results.figures if f.kind in ("main", "latency")]
    if by_latency:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for flow in plan.flows:
            mine = [f for f in by_latency if f.flow == flow]
            if mine:
                xs, ys, spread = _points(mine, lambda f: f.latency_ms)
                ax.errorbar(
                    xs,
                    ys,
                    yerr=spread,
                    marker="o",
                    capsize=3,
                    label=f"{flow} (worker)",
                    color=COLOURS.get(flow),
                )
            naive: dict[float, list[float]] = {}
            for run in (r for r in results.naive if r.flow == flow):
                naive.setdefault(run.latency_ms, []).append(run.events_per_s)
            if naive:
                latencies = sorted(naive)
                medians = [statistics.median(naive[latency]) for latency in latencies]
                ax.plot(
                    latencies,
                    medians,
                    marker="x",
                    linestyle="--",
                    label=f"{flow} (naive)",
                    color=COLOURS.get(flow),
                )
        ax.set_yscale("log")
        ax.set_xlabel("emulator latency per API call (ms)")
        ax.set_ylabel("events/s (log)")
        ax.set_title("Throughput against Salesforce latency, default window")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / LATENCY_PNG, dpi=110)
        plt.close(fig)
        written.append(LATENCY_PNG)
    return written
