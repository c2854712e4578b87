"""``make bench``: the raw Kafka ceiling and the end-to-end figures, in one run, on one broker.

Writes a Markdown table to ``bench/results/<UTC date>.md`` and prints it. Sizes are kept small
enough for a 2-core machine to finish in a few minutes; pass ``--events N`` for more.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
from dataclasses import replace
from pathlib import Path

from agents.settings import KafkaSettings
from bench.e2e import E2EResult, measure
from bench.raw_ceiling import measure as measure_ceiling
from localkafka import BrokerOptions, LocalBroker

RESULTS = Path(__file__).with_name("results")


async def run(bootstrap: str, events: int, latencies: list[float], flows: list[str]) -> str:
    ceiling = await measure_ceiling(bootstrap, records=50_000)
    rows: list[tuple[bool, E2EResult]] = []
    for flow in flows:
        for latency in latencies:
            for batching in (True, False):
                result = await measure(
                    bootstrap,
                    flow=flow,
                    latency_ms=latency,
                    events=events,
                    paced_rate=50.0,
                    paced_events=250,
                    configure=lambda c, b=batching: replace(c, batching=b),
                )
                rows.append((batching, result))
                print("batching" if batching else "no batching", result)
    lines = [
        f"# Benchmark {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; broker, worker and "
        "emulator on this machine (the emulator in its own process). Command: `make bench`.",
        "",
        f"Raw aiokafka consume-and-produce ceiling (50,000 x 600 B, 1 partition, acks=all): "
        f"**{ceiling.per_second:,.0f} records/s**",
        "",
        "| flow | emulator latency | batching | events | events/s (backlog) | p50 | p95 | p99 | API calls/event |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.flow} | {r.latency_ms:.0f} ms | {'on' if b else 'off'} | {r.events} | {r.events_per_s:,.0f} | "
        f"{r.p50_ms:.0f} ms | {r.p95_ms:.0f} ms | {r.p99_ms:.0f} ms | {r.api_calls_per_event:.2f} |"
        for b, r in rows
    ]
    lines += [
        "",
        "Latency: 250 events fed at 50/s after the backlog drained; run-result "
        "timestamp minus input timestamp.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1500, help="backlog size per measurement")
    parser.add_argument("--latency", type=float, action="append", help="emulator latency, ms")
    parser.add_argument("--flow", action="append", choices=["create-lead", "find-else-create"])
    args = parser.parse_args()
    latencies = args.latency or [0.0, 50.0]
    flows = args.flow or ["create-lead", "find-else-create"]
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        report = asyncio.run(run(settings.bootstrap_servers, args.events, latencies, flows))
    else:
        with LocalBroker(BrokerOptions(kafka_version=settings.local_version)) as broker:
            report = asyncio.run(run(broker.bootstrap_servers, args.events, latencies, flows))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{dt.datetime.now(dt.UTC):%Y-%m-%d-%H%M}.md"
    path.write_text(report)
    print(report)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
