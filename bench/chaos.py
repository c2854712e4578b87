"""``make chaos``: a seeded chaos run against real processes, and one table of what came out.

The broker (a ``kafka.Kafka`` JVM), the Salesforce emulator and the worker (``actionflows
worker``) each run in a process of their own. Events are produced at a steady rate; meanwhile,
at seeded-random times:

- the worker is SIGKILLed N times, and started again after a short seeded pause (a worker that
  exits on its own is started again too, and counted);
- the broker is SIGKILLed once and started again on the same data directory and port;
- the org's access tokens are expired (the worker must log in again);
- the org answers one call with 403 REQUEST_LIMIT_EXCEEDED, so the worker pauses on its API
  budget and resumes;
- all along, 5% of write calls lose their answer after Salesforce committed them, and 2% of
  data-API calls answer 503.

The flow creates a lead and a case per event (both upserts keyed by the event), and the emulator's
duplicate rules are off, so only the worker's own mechanisms can keep a record single. At the end
the run counts each event's records by the event id the flow writes into them. Faults are counted
from the emulator's counters and this run's kill log, not from the plan. The exit status is 1 on
any duplicate, missing record, dead letter, or event without a succeeded run.

Defaults are sized for a 2-core machine: 1,500 events at 25 per second, four worker kills, a few
minutes in all. ``--seed`` replays the same schedule and fault draws.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agents.settings import KafkaSettings
from bench.processes import EmulatorAdmin, EmulatorProcess, WorkerProcess, worker_env
from localkafka import BrokerOptions, LocalBroker
from sfemulator import EmulatorConfig, FaultRule

FLOW = """\
name: chaos
version: 1
trigger:
  event_types: [ticket.created]
steps:
  - id: create_lead
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}", description: "chaos {{ event.id }}"}
    fields: {Email: "{{ event.requester.email }}"}
    policy: {max_attempts: 20, backoff: {initial_s: 0.2, max_s: 2}}
  - id: open_case
    action: salesforce.create_record
    object: case
    inputs: {name: "chaos {{ event.id }}", description: "ticket {{ event.ticket_id }}"}
    policy: {max_attempts: 20, backoff: {initial_s: 0.2, max_s: 2}}
"""
PREFIX = "chaos"
KEY = "chaos "  # what the flow writes before the event id, in Description (lead), Subject (case)


@dataclass(frozen=True)
class Plan:
    """The seeded schedule, in seconds from the start of production."""

    events: int
    rate: float
    worker_kills: tuple[tuple[float, float], ...]  # (at, pause before the restart)
    broker_kill: tuple[float, float]  # (at, downtime)
    token_expiry_at: float
    budget_pause_at: float

    @classmethod
    def draw(cls, seed: int, events: int, rate: float, kills: int) -> Plan:
        rng = random.Random(seed)
        span = events / rate
        return cls(
            events=events,
            rate=rate,
            worker_kills=tuple(
                sorted((rng.uniform(0.1, 0.95) * span, rng.uniform(0.5, 3.0)) for _ in range(kills))
            ),
            broker_kill=(rng.uniform(0.35, 0.65) * span, rng.uniform(3.0, 8.0)),
            token_expiry_at=rng.uniform(0.15, 0.85) * span,
            budget_pause_at=rng.uniform(0.15, 0.85) * span,
        )


@dataclass
class Log:
    """What this run did to the processes, as it happened."""

    started: float = field(default_factory=time.monotonic)
    worker_kills: int = 0
    worker_exits: list[int] = field(default_factory=list)  # exit codes of unplanned exits
    broker_kills: int = 0
    broker_down_s: float = 0.0
    resent: int = 0  # input records sent again after the producer failed

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", flush=True)


@dataclass
class Results:
    """Run results and dead letters, read as they arrive."""

    finished: set[str] = field(default_factory=set)  # events with a succeeded or dead run
    succeeded: set[str] = field(default_factory=set)
    dead_letters: int = 0


class Chaos:
    def __init__(self, args: argparse.Namespace, work: Path, log: Log) -> None:
        self.args = args
        self.work = work
        self.plan = Plan.draw(args.seed, args.events, args.rate, args.worker_kills)
        self.log = log
        self.results = Results()
        self.events = [f"c{i:05d}" for i in range(args.events)]
        self.worker: WorkerProcess | None = None
        self.restarting = False  # a planned kill is in progress: the supervisor stays out
        self._one_kill_at_a_time = asyncio.Lock()

    async def run(self, broker: LocalBroker, admin: EmulatorAdmin, env: dict[str, str]) -> int:
        flows = self.work / "flows"
        flows.mkdir()
        (flows / "chaos.yaml").write_text(FLOW)
        log_path = self.work / "worker.log"

        def start_worker() -> None:
            self.worker = WorkerProcess(env, flows, log_path).start()
            self.log.say(f"worker started (pid {self.worker.pid})")

        start_worker()
        await self._topics_made(broker.bootstrap_servers)
        reader = asyncio.create_task(self._read_results(broker.bootstrap_servers))
        supervisor = asyncio.create_task(self._supervise(start_worker))
        try:
            produced_at = await self._produce_with_faults(broker, admin, start_worker)
            await self._drain(reader)
            drained_at = time.monotonic()
            if self.worker is not None:
                await self.worker.stop()
        finally:
            supervisor.cancel()
            reader.cancel()
            if self.worker is not None:
                await self.worker.kill()
        return await self._report(admin, drained_at - produced_at)

    async def _produce_with_faults(
        self, broker: LocalBroker, admin: EmulatorAdmin, start_worker: Callable[[], None]
    ) -> float:
        """Produce every event on time while the planned faults happen; return when the last
        event was acknowledged."""
        plan = self.plan
        begin = time.monotonic()
        actions: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            *((at, self._worker_kill(pause, start_worker)) for at, pause in plan.worker_kills),
            (plan.broker_kill[0], self._broker_kill(broker, plan.broker_kill[1])),
            (plan.token_expiry_at, self._expire_tokens(admin)),
            (plan.budget_pause_at, self._budget_pause(admin)),
        ]

        async def on_time(at: float, action: Callable[[], Awaitable[None]]) -> None:
            await asyncio.sleep(max(0.0, begin + at - time.monotonic()))  # the schedule
            await action()

        injecting = [asyncio.create_task(on_time(at, action)) for at, action in actions]
        try:
            await self._produce(broker.bootstrap_servers, begin)
            await asyncio.gather(*injecting)
        finally:
            for task in injecting:
                task.cancel()
        self.log.say(f"all {len(self.events)} events produced; faults done")
        return time.monotonic()

    async def _produce(self, bootstrap: str, begin: float) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for index, event in enumerate(self.events):
                await asyncio.sleep(max(0.0, begin + index / self.plan.rate - time.monotonic()))
                ticket = f"t{index % max(1, len(self.events) // 10):04d}"
                value = orjson.dumps({
                    "id": event, "type": "ticket.created",
                    "ticket": {"id": ticket, "subject": "chaos"},
                    "requester": {"name": f"Chaos {event}", "email": f"{event}@example.com"},
                })  # fmt: skip
                while True:
                    try:
                        await producer.send_and_wait(
                            f"{PREFIX}.tickets", value, key=ticket.encode()
                        )
                        break
                    except KafkaError as error:  # the broker is down: send it again
                        self.log.resent += 1
                        self.log.say(f"producing {event} failed ({error!r}); again")
                        await asyncio.sleep(1.0)  # back off while the broker restarts
        finally:
            await producer.stop()

    def _worker_kill(
        self, pause: float, start_worker: Callable[[], None]
    ) -> Callable[[], Awaitable[None]]:
        async def kill() -> None:
            async with self._one_kill_at_a_time:
                self.restarting = True
                try:
                    if self.worker is not None:
                        await self.worker.kill()
                        self.log.worker_kills += 1
                        self.log.say(f"worker SIGKILLed; restart in {pause:.1f}s")
                    await asyncio.sleep(pause)  # the planned downtime
                    start_worker()
                finally:
                    self.restarting = False

        return kill

    def _broker_kill(self, broker: LocalBroker, down: float) -> Callable[[], Awaitable[None]]:
        async def kill() -> None:
            broker.kill()
            self.log.broker_kills += 1
            stopped = time.monotonic()
            self.log.say(f"broker SIGKILLed; restart in {down:.1f}s on the same data and port")
            await asyncio.sleep(down)  # the planned downtime
            await broker.restart()
            self.log.broker_down_s = time.monotonic() - stopped
            self.log.say(f"broker back after {self.log.broker_down_s:.1f}s")

        return kill

    def _expire_tokens(self, admin: EmulatorAdmin) -> Callable[[], Awaitable[None]]:
        async def expire() -> None:
            await admin.expire_tokens()
            self.log.say("access tokens expired")

        return expire

    def _budget_pause(self, admin: EmulatorAdmin) -> Callable[[], Awaitable[None]]:
        async def pause() -> None:
            limit = FaultRule("request_limit_exceeded", path_regex=DATA_API, times=1)
            await admin.set_faults([limit, *FAULTS])
            self.log.say("the next call answers 403 REQUEST_LIMIT_EXCEEDED")

        return pause

    async def _supervise(self, start_worker: Callable[[], None]) -> None:
        """Start the worker again if it exits on its own, as a process supervisor would."""
        while True:
            await asyncio.sleep(0.5)  # supervision interval
            worker = self.worker
            if self.restarting or worker is None or worker.exit_code is None:
                continue
            self.log.worker_exits.append(worker.exit_code)
            self.log.say(f"worker exited by itself ({worker.exit_code}); starting it again")
            await asyncio.sleep(1.0)  # a supervisor's restart delay
            if not self.restarting:
                start_worker()

    async def _read_results(self, bootstrap: str) -> None:
        consumer = AIOKafkaConsumer(
            f"{PREFIX}.run-results",
            f"{PREFIX}.dead-letters",
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async for record in consumer:
                if record.topic.endswith(".dead-letters"):
                    self.results.dead_letters += 1
                    continue
                run = orjson.loads(record.value)
                if run["status"] in {"succeeded", "dead_letter"}:
                    self.results.finished.add(run["event_id"])
                if run["status"] == "succeeded":
                    self.results.succeeded.add(run["event_id"])
        finally:
            await consumer.stop()

    async def _topics_made(self, bootstrap: str) -> None:
        """Wait until the worker created its topics (reading them earlier would create them
        with the broker's defaults instead of the catalogue's)."""
        wanted = {f"{PREFIX}.tickets", f"{PREFIX}.run-results", f"{PREFIX}.dead-letters"}
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            while not wanted <= set(await admin.list_topics()):
                if self.worker is not None and self.worker.exit_code is not None:
                    raise RuntimeError(f"the worker exited at start\n{self.worker.tail()}")
                await asyncio.sleep(0.2)  # polling while the worker starts
        finally:
            await admin.close()

    async def _drain(self, reader: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + self.args.timeout
        while len(self.results.finished) < len(self.events):
            if reader.done():
                reader.result()  # raises what stopped the reader
                raise RuntimeError("the result reader stopped")
            if time.monotonic() > deadline:
                self.log.say(
                    f"gave up waiting: {len(self.events) - len(self.results.finished)} events "
                    f"unfinished after {self.args.timeout}s"
                )
                return
            await asyncio.sleep(0.5)  # polling the results the reader collects
        self.log.say("every event has a final run result")

    def _pauses(self) -> int:
        """How often the worker logged that it paused (the engine's "flow … paused for …")."""
        log = (self.work / "worker.log").read_text(errors="replace")
        return sum(" paused for " in line for line in log.splitlines())

    async def _report(self, admin: EmulatorAdmin, drain_s: float) -> int:
        leads = Counter(
            (r.get("Description") or "").removeprefix(KEY) for r in await admin.records("Lead")
        )
        cases = Counter(
            (r.get("Subject") or "").removeprefix(KEY) for r in await admin.records("Case")
        )
        fired = (await admin.fault_counts())["fired"]
        expected = 2 * len(self.events)
        found = sum(leads[e] + cases[e] for e in self.events)
        duplicates = sum(max(0, c[e] - 1) for c in (leads, cases) for e in self.events)
        missing = sum(c[e] == 0 for c in (leads, cases) for e in self.events)
        unfinished = sum(e not in self.results.succeeded for e in self.events)
        log = self.log
        rows = [
            ("events in", f"{len(self.events):,}"),
            ("records expected", f"{expected:,} (a lead and a case per event)"),
            ("records found", f"{found:,}"),
            ("duplicates", f"{duplicates:,}"),
            ("missing", f"{missing:,}"),
            ("dead letters", f"{self.results.dead_letters:,}"),
            ("events without a succeeded run", f"{unfinished:,}"),
            ("fault: worker SIGKILL", f"{log.worker_kills} (kill log)"),
            ("fault: worker exited by itself", f"{len(log.worker_exits)} {log.worker_exits or ''}"),
            (
                "fault: broker SIGKILL, restart on its data",
                f"{log.broker_kills} (kill log; down {log.broker_down_s:.1f} s)",
            ),
            ("fault: lost answers after commit", f"{fired.get('fail_after_commit', 0)} (emulator)"),
            ("fault: 503 Server Unavailable", f"{fired.get('http_error', 0)} (emulator)"),
            ("fault: access tokens expired", f"{fired.get('expire_tokens', 0)} (emulator)"),
            (
                "fault: 403 REQUEST_LIMIT_EXCEEDED (budget pause)",
                f"{fired.get('request_limit_exceeded', 0)} (emulator)",
            ),
            ("flow runs paused on the API budget", f"{self._pauses()} (worker log)"),
            ("input records sent again", f"{log.resent}"),
            ("time to drain", f"{drain_s:.1f} s after the last event was produced"),
            ("whole run", f"{time.monotonic() - log.started:.1f} s"),
        ]
        width = max(len(name) for name, _ in rows)
        off = f", {self.args.switch_off} switched off" if self.args.switch_off else ""
        print(f"\nchaos run, seed {self.args.seed}{off}\n")
        print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
        for name, value in rows:
            print(f"| {name:<{width}} | {value} |")
        failed = duplicates or missing or self.results.dead_letters or unfinished
        print("\nFAILED: effects are not exactly once" if failed else "\nexactly once: OK")
        return 1 if failed else 0


# What --switch-off sets in the worker's environment (see agents/settings.py).
SWITCHES = {
    "ledger": {"LEDGER": "off"},
    "keys": {"EXTERNAL_ID_FIELDS": "none"},
    "both": {"LEDGER": "off", "EXTERNAL_ID_FIELDS": "none"},
}
DATA_API = "^/services/data/"  # not the token endpoint: logins get no data-API faults
WRITES = "/sobjects"  # single-record and sObject Collections writes, upserts and creates
FAULTS = (
    *(
        FaultRule("fail_after_commit", method=method, path_regex=WRITES, probability=0.05)
        for method in ("PATCH", "POST")
    ),
    FaultRule.server_unavailable(path_regex=DATA_API, probability=0.02),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1500, help="events to produce (1500)")
    p.add_argument("--rate", type=float, default=25.0, help="events per second (25)")
    p.add_argument("--worker-kills", type=int, default=4, help="worker SIGKILLs (4)")
    p.add_argument("--seed", type=int, default=20261130, help="the schedule and fault draws")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for draining")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    p.add_argument(
        "--switch-off",
        choices=sorted(SWITCHES),
        help="a negative control: run with this mechanism off (the run should then fail)",
    )
    return p


async def chaos(args: argparse.Namespace, work: Path, broker: LocalBroker, log: Log) -> int:
    emulator = EmulatorConfig(
        seed=args.seed,
        latency_ms=10.0,
        latency_jitter_ms=5.0,
        duplicate_rules=(),
        faults=FAULTS,
        daily_api_limit=10_000_000,
    )
    with EmulatorProcess(emulator) as address:
        log.say(f"emulator at {address.url}")
        env = worker_env(
            broker.bootstrap_servers,
            PREFIX,
            PREFIX,
            address,
            PARTITIONS="3",
            RETRY_DELAYS="1s,5s",
            BUDGET_PROBE="5s",
            STATE_DIR=str(work / "state"),
            **SWITCHES.get(args.switch_off or "", {}),
        )
        async with EmulatorAdmin(address.url) as admin:
            return await Chaos(args, work, log).run(broker, admin, env)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # This run's own producer and reader see the broker die on purpose; the log says so once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    work = Path(tempfile.mkdtemp(prefix="actionflows-chaos-"))
    print(f"work folder {work}; seed {args.seed}", flush=True)
    settings = KafkaSettings.from_env()
    # Started from this (the main) thread: the kernel ends a JVM when the thread that launched
    # it ends, and the broker must outlive any helper thread.
    broker = LocalBroker(
        BrokerOptions(kafka_version=settings.local_version, data_dir=work / "kafka", partitions=3)
    ).start()
    log = Log()
    log.say(f"broker at {broker.bootstrap_servers} (data in {broker.work_dir})")
    code = 1
    try:
        code = asyncio.run(chaos(args, work, broker, log))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        broker.stop()
        if args.keep or code != 0:
            print(f"logs and data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
