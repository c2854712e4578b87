"""``python -m bench.stall``: the stall of 1.5 s, reproduced, with faust's fetch wait and with ours.

A worker's consumer reads its input topics and the retry tiers, which are mostly idle. aiokafka
keeps one fetch in flight per broker, and a fetch leaves out the partitions whose records are
still buffered. When such a fetch goes out for the idle topics only, the broker holds it for the
whole fetch wait, and the busy partitions are not fetched meanwhile: every event waits that long
(agents/kafka_client.py, ``FETCH_MAX_WAIT_MS``). It takes a busy machine for a fetch to go out at
that moment, so each run here is disturbed: two processes spin on the cores for 1.5 s every 6 s.

Each pair of runs is find-else-create at 0 ms (a backlog, then a feed at half its rate, as in
``make bench``), once with faust's wait of 1,500 ms and once with the worker's, interleaved.
Printed per run: the feed's latency (p50, p99) and whether it stalled (p99 over 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from agents.kafka_client import FETCH_MAX_WAIT_MS
from agents.settings import KafkaSettings
from bench.children import emulator_process
from bench.e2e import FlowSetting, run_flow
from localkafka import BrokerOptions, LocalBroker

FAUST_FETCH_WAIT_MS = 1500  # faust.transport.drivers.aiokafka's literal
SPIN_S = 1.5
EVERY_S = 6.0
STALLED_MS = 1000.0


@contextlib.asynccontextmanager
async def disturbed(spin_s: float = SPIN_S, every_s: float = EVERY_S) -> AsyncIterator[None]:
    """Two processes spin on the cores for ``spin_s`` every ``every_s``, until the block ends."""

    code = f"import time\nend = time.time() + {spin_s}\nwhile time.time() < end: pass"

    async def spin() -> None:
        while True:
            await asyncio.sleep(every_s)  # the disturbance's own period
            spinners = [
                await asyncio.create_subprocess_exec(sys.executable, "-c", code) for _ in range(2)
            ]
            await asyncio.gather(*(spinner.wait() for spinner in spinners))

    task = asyncio.create_task(spin())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def compare(bootstrap: str, pairs: int, events: int) -> None:
    with emulator_process(0.0) as emulator:
        for pair in range(1, pairs + 1):
            for wait in (FAUST_FETCH_WAIT_MS, FETCH_MAX_WAIT_MS):
                setting = FlowSetting(
                    "find-else-create", 0.0, events, paced=True, min_paced_events=events,
                    fetch_wait_ms=wait,
                )  # fmt: skip
                async with disturbed():
                    run = await run_flow(bootstrap, emulator, setting)
                latency = run.latency
                assert latency is not None
                stalled = "stalled" if latency.p99_ms > STALLED_MS else ""
                print(
                    f"pair {pair}, fetch wait {wait:>5} ms: {latency.events} events at "
                    f"{latency.rate:,.0f}/s, p50 {latency.p50_ms:,.0f} ms, p99 "
                    f"{latency.p99_ms:,.0f} ms {stalled}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stall", description=__doc__)
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--events", type=int, default=2000, help="backlog and feed (2000)")
    args = parser.parse_args()
    if args.pairs < 1 or args.events < 100:
        parser.error("--pairs must be at least 1 and --events at least 100")
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        asyncio.run(compare(settings.bootstrap_servers, args.pairs, args.events))
    else:
        with LocalBroker(BrokerOptions(kafka_version=settings.local_version)) as broker:
            asyncio.run(compare(broker.bootstrap_servers, args.pairs, args.events))


if __name__ == "__main__":
    main()
