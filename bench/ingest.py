"""Webhook ingest benchmark: signed Zendesk webhooks over HTTP, acknowledged by the broker.

The ingest runs as ``actionflows ingest`` in its own process (as deployed), the load generator
in this one, the broker in its JVM; all on one machine. Two measurements:

- throughput: ``webhooks`` signed event webhooks sent by ``concurrency`` keep-alive connections
  as fast as they are answered; accepted webhooks per second over the whole run (every answer
  200 means every record was acknowledged at acks=all);
- latency: webhooks sent open-loop at ``paced_rate`` per second for ``paced_seconds``; latency is
  from the moment each was due to its 200, so a client falling behind counts against it.

``enrich=True`` sends ids-only webhooks and lets the ingest look the 200 requesters up in the
Zendesk API emulator (run in this process): after the first few, lookups hit the cache.

``python -m bench.ingest`` prints the table and writes it to ``bench/results/ingest-<UTC>.md``;
``measure()`` is what ``make bench`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from agents.ingest.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from agents.settings import KafkaSettings
from localkafka import BrokerOptions, LocalBroker
from localkafka.broker import free_port
from zdemulator import OAUTH_TOKEN, ZendeskEmulator

RESULTS = Path(__file__).with_name("results")
SECRET = "YmVuY2gtc2lnbmluZy1zZWNyZXQ="  # noqa: S105 - the benchmark's own throwaway secret
PEOPLE = 200


@dataclass(frozen=True, slots=True)
class IngestResult:
    webhooks: int
    concurrency: int
    seconds: float
    refused: int
    paced_rate: float
    paced: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    enrich: bool
    cpu_us: float  # the ingest process's CPU time per webhook in the throughput run
    load: float  # the machine's 1-minute load average when the throughput run started

    @property
    def accepted_per_s(self) -> float:
        return (self.webhooks - self.refused) / self.seconds

    def row(self) -> str:
        return (
            f"| {'ids only, enriched' if self.enrich else 'enriched by Zendesk'} | {self.webhooks:,} "
            f"| {self.concurrency} | **{self.accepted_per_s:,.0f}** | {self.refused} "
            f"| {self.paced_rate:,.0f}/s for {self.paced:,} | {self.p50_ms:.1f} ms | {self.p95_ms:.1f} ms "
            f"| **{self.p99_ms:.1f} ms** | {self.cpu_us:.0f} µs | {self.load:.1f} |"
        )


HEADER = (
    "| webhooks | sent | connections | accepted/s | refused | paced | p50 | p95 | p99 "
    "| ingest CPU/webhook | load |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def _body(i: int, enrich: bool) -> bytes:
    ticket = 100_000 + i % 1000
    person = 90_000 + i % PEOPLE
    detail: dict[str, object] = {
        "id": str(ticket),
        "status": "NEW",
        "priority": "NORMAL",
        "subject": "Pricing for 50 seats?",
        "description": "We are evaluating your product for a support team of 50. " * 3,
        "requester_id": str(person),
        "organization_id": "70001",
        "via": {"channel": "web"},
        "tags": ["sales", "pricing"],
    }
    doc: dict[str, object] = {
        "type": "zen:event-type:ticket.created",
        "account_id": 88888888,
        "id": f"bench-{uuid.uuid4().hex}",
        "time": "2026-11-25T09:00:00Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket}",
        "detail": detail,
        "event": {"current": {"status": "NEW"}},
    }
    if not enrich:
        doc["requester"] = {
            "id": str(person),
            "name": f"Person {person}",
            "email": f"p{person}@example.com",
        }
        doc["organization"] = {"id": "70001", "name": "Acme Corporation"}
    return orjson.dumps(doc)


class _Sender:
    def __init__(self, session: aiohttp.ClientSession, url: str, enrich: bool) -> None:
        self.session, self.url, self.enrich = session, url + "/webhooks/zendesk", enrich
        self.sent = 0
        self.refused = 0

    async def send(self) -> None:
        body = _body(self.sent, self.enrich)
        self.sent += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)}
        async with self.session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            self.refused += response.status != 200


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def _ingest(bootstrap: str, zendesk_url: str | None) -> AsyncIterator[tuple[str, int]]:
    """``actionflows ingest`` in a child process; yields its URL and pid once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ACTIONFLOWS_TOPIC_PREFIX": f"bench-ingest-{uuid.uuid4().hex[:8]}",
        "ACTIONFLOWS_INGEST_PORT": str(port),
        "ACTIONFLOWS_INGEST_ZENDESK_SECRETS": SECRET,
    }
    if zendesk_url:
        env |= {
            "ACTIONFLOWS_ZENDESK_URL": zendesk_url,
            "ACTIONFLOWS_ZENDESK_OAUTH_TOKEN": OAUTH_TOKEN,
        }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.cli", "ingest", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + "/readyz") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("the ingest did not become ready within 60 s")
                await asyncio.sleep(0.2)  # polling interval of a bounded wait
        yield url, process.pid
    finally:
        process.terminate()
        await process.wait()


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def measure(
    bootstrap: str,
    *,
    webhooks: int = 20_000,
    concurrency: int = 64,
    paced_rate: float = 1000.0,
    paced_seconds: float = 10.0,
    enrich: bool = False,
) -> IngestResult:
    """Throughput and paced latency of the ingest against the broker at ``bootstrap``."""
    async with contextlib.AsyncExitStack() as stack:
        zendesk_url = None
        if enrich:
            users = [
                {"id": 90_000 + i, "name": f"Person {i}", "email": f"p{i}@example.com"}
                for i in range(PEOPLE)
            ]
            zd = await stack.enter_async_context(
                ZendeskEmulator(
                    users=users, organizations=[{"id": 70001, "name": "Acme"}], rate_limit=10**9
                )
            )
            zendesk_url = zd.url
        url, pid = await stack.enter_async_context(_ingest(bootstrap, zendesk_url))
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        )
        sender = _Sender(session, url, enrich)
        await asyncio.gather(*(sender.send() for _ in range(min(500, webhooks))))  # warm up
        sender.sent = sender.refused = 0

        async def worker(share: int) -> None:
            for _ in range(share):
                await sender.send()

        shares = [
            webhooks // concurrency + (i < webhooks % concurrency) for i in range(concurrency)
        ]
        load = os.getloadavg()[0]
        cpu, started = _cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(worker(share) for share in shares))
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds(pid) - cpu
        refused = sender.refused

        latencies: list[float] = []
        paced = int(paced_rate * paced_seconds)

        async def one(due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await sender.send()
            latencies.append((time.perf_counter() - due) * 1000)

        begin = time.perf_counter() + 0.05
        await asyncio.gather(*(one(begin + i / paced_rate) for i in range(paced)))
    return IngestResult(
        webhooks=webhooks,
        concurrency=concurrency,
        seconds=seconds,
        refused=refused + sender.refused,
        paced_rate=paced_rate,
        paced=paced,
        p50_ms=statistics.median(latencies),
        p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99),
        enrich=enrich,
        cpu_us=cpu / webhooks * 1e6,
        load=load,
    )


def report(results: list[IngestResult]) -> str:
    lines = [
        f"# Ingest benchmark {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; the broker, "
        "`actionflows ingest` (its own process) and the load generator on this machine. "
        "Command: `python -m bench.ingest`. Target: ≥ 2,000 accepted webhooks/s, and p99 ≤ 50 ms "
        "at half that rate.",
        "",
        HEADER,
        *(r.row() for r in results),
        "",
        "Accepted means answered 200, i.e. acknowledged by the broker at acks=all. Signed "
        "`zen:event-type:ticket.created` webhooks of about 900 bytes, 1,000 tickets. Latency: "
        "open-loop at the paced rate, from when each webhook was due to its 200. The ingest's CPU "
        "time per webhook (from /proc) depends least on what else runs on the machine; load is "
        "the 1-minute load average as the throughput run began (2 cores: above 2, others compete).",
    ]
    return "\n".join(lines) + "\n"


async def _run(bootstrap: str, args: argparse.Namespace) -> list[IngestResult]:
    results = []
    for enrich in (False, True):
        result = await measure(
            bootstrap,
            webhooks=args.webhooks,
            concurrency=args.concurrency,
            paced_rate=args.rate,
            paced_seconds=args.seconds,
            enrich=enrich,
        )
        print(result.row(), flush=True)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument(
        "--webhooks", type=int, default=20_000, help="webhooks in the throughput run"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="connections sending at once")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced webhooks per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced run")
    args = parser.parse_args()
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        results = asyncio.run(_run(settings.bootstrap_servers, args))
    else:
        with LocalBroker(BrokerOptions(kafka_version=settings.local_version)) as broker:
            results = asyncio.run(_run(broker.bootstrap_servers, args))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ingest-{dt.datetime.now(dt.UTC):%Y-%m-%d-%H%M}.md"
    text = report(results)
    path.write_text(text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
