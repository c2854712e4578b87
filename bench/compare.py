"""``python -m bench.compare BASE [HEAD]``: two revisions of the worker, in interleaved pairs of runs.

A full ``make bench`` measures one revision. On a shared machine its speed moves by a third from
one run to the next (docs/benchmarks.md, "The targets"), so two full runs cannot show a change
of 10%. This runs one flow from two trees on one broker, pair after pair, the order alternating
(base first in odd pairs, head first in even ones), and prints each pair and the median of the
pairs' ratios: a slow spell of the machine falls on both sides of a pair alike.

BASE and HEAD are git revisions; HEAD defaults to the working tree as it is, uncommitted changes
included. A revision is exported with ``git archive`` into a temporary directory, and each run is
a child process that imports the worker, the emulator and ``bench.e2e`` from its tree, so a
revision needs ``bench.e2e.run_flow`` (2026-11-30 on). The broker and this harness are the
working tree's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKING_TREE = "working tree"

# One run, in a child whose PYTHONPATH is the tree under test: argv is bootstrap, flow,
# latency in ms, window (0: the worker's default), events. Prints one JSON line.
_CHILD = """
import asyncio, json, sys
from bench.children import emulator_process
from bench.e2e import FlowSetting, run_flow

async def main(bootstrap, flow, latency, window, events):
    with emulator_process(latency) as emulator:
        run = await run_flow(bootstrap, emulator, FlowSetting(flow, latency, events, window=window or None))
    print("RESULT " + json.dumps({"events_per_s": run.events_per_s,
        "cpu_us_per_event": run.cpu_us_per_event, "api_calls_per_event": run.api_calls_per_event}))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
"""


@dataclass(frozen=True, slots=True)
class Run:
    events_per_s: float
    cpu_us_per_event: float
    api_calls_per_event: float


@dataclass(frozen=True, slots=True)
class Pair:
    base: Run
    head: Run


@dataclass(frozen=True, slots=True)
class Summary:
    pairs: int
    base_events_per_s: float  # medians over the pairs
    head_events_per_s: float
    base_cpu_us: float
    head_cpu_us: float
    rate_ratio: float  # median over the pairs of head / base
    cpu_ratio: float
    head_less_cpu: int  # pairs where head spent less CPU per event than base


def summarise(pairs: Sequence[Pair]) -> Summary:
    """Medians of each side, and the median of the pairs' own ratios (head / base)."""
    if not pairs:
        raise ValueError("no pairs to summarise")
    return Summary(
        pairs=len(pairs),
        base_events_per_s=statistics.median(p.base.events_per_s for p in pairs),
        head_events_per_s=statistics.median(p.head.events_per_s for p in pairs),
        base_cpu_us=statistics.median(p.base.cpu_us_per_event for p in pairs),
        head_cpu_us=statistics.median(p.head.cpu_us_per_event for p in pairs),
        rate_ratio=statistics.median(p.head.events_per_s / p.base.events_per_s for p in pairs),
        cpu_ratio=statistics.median(
            p.head.cpu_us_per_event / p.base.cpu_us_per_event for p in pairs
        ),
        head_less_cpu=sum(p.head.cpu_us_per_event < p.base.cpu_us_per_event for p in pairs),
    )


def describe(run: Run) -> str:
    return (
        f"{run.events_per_s:,.0f} events/s, {run.cpu_us_per_event:,.0f} µs CPU/event, "
        f"{run.api_calls_per_event:.3f} calls/event"
    )


def verdict(summary: Summary, base: str, head: str) -> str:
    return (
        f"{summary.pairs} pair(s). Medians: {base} {summary.base_events_per_s:,.0f} events/s and "
        f"{summary.base_cpu_us:,.0f} µs CPU/event; {head} {summary.head_events_per_s:,.0f} "
        f"events/s and {summary.head_cpu_us:,.0f} µs CPU/event.\n"
        f"Per pair, {head} / {base} (median): events/s x{summary.rate_ratio:.3f}, CPU per event "
        f"x{summary.cpu_ratio:.3f}; {head} spent less CPU per event in {summary.head_less_cpu} "
        f"of {summary.pairs} pair(s)."
    )


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git") or "git"
    return subprocess.run([git, *args], cwd=ROOT, capture_output=True, check=False)  # noqa: S603 - git, our arguments


def resolve(revision: str) -> str:
    """The commit ``revision`` names, or SystemExit saying it names none."""
    found = _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if found.returncode != 0:
        raise SystemExit(f"bench.compare: {revision!r} is not a commit of this repository")
    return found.stdout.decode().strip()


@contextlib.contextmanager
def tree(revision: str | None) -> Iterator[Path]:
    """The working tree itself (``None``), or ``revision`` exported into a temporary directory."""
    if revision is None:
        yield ROOT
        return
    archive = _git("archive", revision)
    if archive.returncode != 0:
        raise SystemExit(f"bench.compare: git archive {revision}: {archive.stderr.decode()}")
    with tempfile.TemporaryDirectory(prefix="actionflows-compare-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory)


def one_run(
    source: Path, bootstrap: str, flow: str, latency: float, window: int, events: int
) -> Run:
    """One run of ``flow`` with the worker, the emulator and bench.e2e of ``source``."""
    args = [bootstrap, flow, f"{latency:g}", str(window), str(events)]
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _CHILD, *args],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=max(600.0, events / 20),
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return Run(**json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(
        f"a run from {source} printed no result (exit {done.returncode}):\n{done.stderr[-3000:]}"
    )


def _name(revision: str, commit: str) -> str:
    """``HEAD~3 (1a2b3c4)``; a revision that is the commit's own id is not said twice."""
    return revision if commit.startswith(revision) else f"{revision} ({commit[:7]})"


@contextlib.contextmanager
def _bootstrap() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` when set, else a local broker for the comparison."""
    from agents.settings import KafkaSettings
    from localkafka import BrokerOptions, LocalBroker

    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    with LocalBroker(BrokerOptions(kafka_version=settings.local_version)) as broker:
        yield broker.bootstrap_servers


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("base", help="the revision to compare against (e.g. HEAD~3, a SHA)")
    parser.add_argument("head", nargs="?", help="the other revision (default: the working tree)")
    parser.add_argument(
        "--flow", default="create-lead", choices=("create-lead", "find-else-create")
    )
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency, ms (0)")
    parser.add_argument("--events", type=int, default=20_000, help="backlog per run (20000)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs (3)")
    parser.add_argument("--window", type=int, default=0, help="in-flight window (worker's)")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.events < 100 or args.latency < 0 or args.window < 0:
        parser.error("--pairs must be at least 1, --events at least 100, the rest not negative")
    base_commit = resolve(args.base)
    head_commit = resolve(args.head) if args.head else None
    base_name = _name(args.base, base_commit)
    head_name = _name(args.head, head_commit) if head_commit else WORKING_TREE

    pairs: list[Pair] = []
    with tree(base_commit) as base, tree(head_commit) as head, _bootstrap() as bootstrap:
        for number in range(1, args.pairs + 1):
            base_first = number % 2 == 1
            runs: dict[Path, Run] = {}
            for source in (base, head) if base_first else (head, base):
                runs[source] = one_run(
                    source,
                    bootstrap,
                    args.flow,
                    args.latency,
                    args.window,
                    args.events,
                )
            pair = Pair(runs[base], runs[head])
            pairs.append(pair)
            print(
                f"pair {number} ({'base' if base_first else 'head'} first): {base_name} "
                f"{describe(pair.base)} | {head_name} {describe(pair.head)}",
                flush=True,
            )
    print(verdict(summarise(pairs), base_name, head_name), flush=True)


if __name__ == "__main__":
    main()
