"""``make bench``: ceilings, the flows, the sweeps and the naive baseline, in one run, on one broker.

Writes ``bench/results/<UTC date>.md`` (and the raw figures as ``.json``), the plots, and the
section of ``docs/benchmarks.md`` between its markers. ``--quick`` (``make bench-quick``) runs a
small plan, one run per figure, for smoke tests; it writes to ``bench/results/`` only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path

from agents.settings import KafkaSettings
from bench import plots, report
from bench.plan import FULL, QUICK
from bench.runner import Runner
from localkafka import BrokerOptions, LocalBroker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
SHARED_MACHINE = (
    "Indicative: measured on a shared 2-core machine while other work ran on it; "
    "re-measure on a quiet machine before quoting."
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the small plan, for smoke runs")
    parser.add_argument(
        "--note", default="", help=f"a line printed above the results (e.g. {SHARED_MACHINE!r})"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the worker in the 0 ms main runs"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d-%H%M}"
    profile_dir = RESULTS / f"{stamp}-profile" if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        results = asyncio.run(
            Runner(settings.bootstrap_servers, plan, profile_dir=profile_dir).run()
        )
    else:
        with LocalBroker(BrokerOptions(kafka_version=settings.local_version)) as broker:
            runner = Runner(broker.bootstrap_servers, plan, profile_dir=profile_dir)
            results = asyncio.run(runner.run())
    out = RESULTS / "quick" if args.quick else RESULTS  # quick results are not kept in git
    plot_dir = out / f"{stamp}-plots" if args.quick else DOCS
    plot_dir.mkdir(parents=True, exist_ok=True)
    names = plots.draw(results, plot_dir)
    command = "make bench-quick" if args.quick else "make bench"
    note = args.note or ("Quick run: one run per figure, small backlogs." if args.quick else "")
    (out / f"{stamp}.json").write_text(json.dumps(dataclasses.asdict(results), indent=1))
    prefix = f"{stamp}-plots/" if args.quick else "../../docs/"
    linked = [prefix + name for name in names]
    (out / f"{stamp}.md").write_text(
        report.render(results, note=note, command=command, plots=linked)
    )
    text = report.render(results, note=note, command=command, plots=names)
    if not args.quick:
        page = DOCS / "benchmarks.md"
        page.write_text(report.splice(page.read_text() if page.exists() else "", text))
    print(text)
    print(f"written: {(out / stamp).relative_to(ROOT)}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
