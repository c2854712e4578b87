"""Client throughput against the in-process emulator, no injected latency.

    .venv/bin/python bench/bench_client.py [--seconds 3]

Reports calls per second for single-record creates, SOQL queries and 200-record
sObject Collections creates, at concurrency 1 and 50. The emulator runs in the same process and
event loop, so the figures measure client + emulator overhead on this machine, not Salesforce.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.ports import RecordWrite
from salesforce.client import SalesforceClient
from salesforce.settings import ConnectionSettings
from sfemulator import Emulator, EmulatorConfig

Call = Callable[[int], Awaitable[object]]


async def measure(call: Call, concurrency: int, seconds: float) -> tuple[int, float]:
    """Run ``call`` from ``concurrency`` workers for about ``seconds``; (calls, elapsed)."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(worker_id: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            await call(worker_id * 1_000_000 + n)
            n += 1
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done, time.perf_counter() - start


async def run(seconds: float) -> Table:
    config = EmulatorConfig(daily_api_limit=10**9, concurrency_limit=10**6)
    async with Emulator(config) as emu:
        creds = emu.credentials
        settings = ConnectionSettings(
            name="bench",
            login_url=emu.url,
            api_version=emu.api_version,
            client_id=creds.client_id,
            username=creds.username,
            private_key=SecretStr(creds.private_key_pem),
            max_concurrency=50,
        )
        async with SalesforceClient(settings) as sf:
            await sf.connect()
            for n in range(200):
                emu.insert("Lead", {"LastName": f"seed {n}", "Company": "Bench"})

            async def create(n: int) -> object:
                return await sf.create("Lead", {"LastName": f"n{n}", "Company": "Bench"})

            async def query(n: int) -> object:
                return await sf.query(
                    "SELECT Id, LastName FROM Lead WHERE Company = 'Bench' LIMIT 10"
                )

            async def create_200(n: int) -> object:
                records = [RecordWrite("Contact", {"LastName": f"c{n}-{i}"}) for i in range(200)]
                return await sf.create_many(records)

            table = Table(title=f"SalesforceClient vs in-process emulator ({seconds:g} s per row)")
            for column in ("call", "concurrency", "calls", "calls/s", "records/s"):
                table.add_column(column, justify="right" if column != "call" else "left")
            # Queries first: the emulator scans its table, so later creates would slow them.
            for name, call, per_call in (
                ("query (GET query)", query, 1),
                ("create (POST sobjects)", create, 1),
                ("create_many (200/collection)", create_200, 200),
            ):
                for concurrency in (1, 50):
                    calls, elapsed = await measure(call, concurrency, seconds)
                    rate = calls / elapsed
                    table.add_row(
                        name,
                        str(concurrency),
                        str(calls),
                        f"{rate:,.0f}",
                        f"{rate * per_call:,.0f}",
                    )
            return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each row")
    args = parser.parse_args(argv)
    Console().print(asyncio.run(run(args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
