"""The ``actionflows`` command. Each subcommand parses its own arguments and calls one entry point."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from rich.console import Console

from agents import loops
from agents.config_check import add_check_config, report_config
from agents.engine import EngineSettings
from agents.kafka_client import client_options, explain_unreachable
from agents.loops import EventLoopName
from agents.observe import logs
from agents.service import (
    DEFAULT_EXTERNAL_ID_FIELD,
    OBJECTS_WITH_KEYS,
    Service,
    ServiceConfig,
)
from agents.settings import (
    EnvironmentReads,
    KafkaSettings,
    ObserveSettings,
    WorkerSettings,
    budget_from_env,
    engine_from_env,
    event_loop_from_env,
    external_id_fields_from_env,
    topics_from_env,
)
from localkafka import BrokerError, BrokerOptions, LocalBroker
from pipeline.errors import FlowLoadError
from pipeline.loader import flow_files, load_flows, validate_directory
from salesforce.budget import BudgetPolicy
from salesforce.errors import SalesforceError
from salesforce.settings import ConnectionSettings, SettingsError, load_settings
from topics.catalogue import CatalogueSettings

# The project folder: its flows/ and samples/ are the defaults of run, demo and worker.
ROOT = Path(__file__).resolve().parent.parent


def _kafka(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="actionflows kafka",
        description="Run a local Apache Kafka (KRaft) in the foreground: one node or a cluster.",
    )
    settings = KafkaSettings.from_env()
    parser.add_argument("--version", default=settings.local_version, help="Kafka version to run")
    parser.add_argument(
        "--port", type=int, default=9092, help="first loopback port (0: free ports)"
    )
    parser.add_argument(
        "--brokers", type=int, default=1, help="nodes, each a broker and a controller (1)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the data here; a folder that holds a cluster is started again with its data "
        "and ports (default: a new temporary folder)",
    )
    parser.add_argument(
        "--partitions", type=int, default=1, help="default partitions of new topics"
    )
    args = parser.parse_args(argv)
    try:
        options = BrokerOptions(
            kafka_version=args.version,
            brokers=args.brokers,
            port=args.port,
            partitions=args.partitions,
            data_dir=args.data_dir,
        )
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with LocalBroker(options) as broker:
            print(
                f"Kafka {args.version} ready at {broker.bootstrap_servers} "
                f"in {broker.startup_seconds:.1f}s (data and logs: {broker.work_dir}); "
                "Ctrl-C stops it",
                flush=True,
            )
            stop.wait()
    except BrokerError as error:
        print(f"actionflows kafka: {error}", file=sys.stderr)
        return 1
    return 0


def _connection(
    name: str | None, env: Mapping[str, str] | None = None
) -> ConnectionSettings | None:
    """The named (or default) configured Salesforce connection; None when none is configured."""
    settings = load_settings(env)
    if not settings.connections and name is None:
        return None
    return settings.get(name)


def _flows(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="actionflows flows", description="Work with flow files.")
    sub = parser.add_subparsers(dest="action", required=True)
    validate = sub.add_parser("validate", help="validate every flow file in a folder")
    validate.add_argument("directory", type=Path, help="the folder of flow files")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"{args.directory} is not a folder")
    errors = validate_directory(args.directory)
    for error in errors:
        print(error, file=sys.stderr)
    files = len(flow_files(args.directory))
    if errors:
        print(f"{len(errors)} error(s) in {files} flow file(s)", file=sys.stderr)
        return 1
    print(f"{files} flow file(s) in {args.directory} are valid")
    return 0


def _demo_command(follow: bool) -> Callable[[Sequence[str]], int]:
    def command(argv: Sequence[str]) -> int:
        name = "run" if follow else "demo"
        parser = argparse.ArgumentParser(
            prog=f"actionflows {name}",
            description="Run the worker on local Kafka and the emulator, feed the sample events "
            "and show what happens" + (" (until Ctrl-C)." if follow else ", then summarise."),
        )
        parser.add_argument("--flows", type=Path, default=ROOT / "flows", help="flow folder")
        parser.add_argument("--samples", type=Path, default=ROOT / "samples", help="sample folder")
        parser.add_argument(
            "--connection", help="a configured Salesforce connection instead of the emulator"
        )
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")
        args = parser.parse_args(argv)
        for folder in (args.flows, args.samples):
            if not folder.is_dir():
                parser.error(f"{folder} is not a folder")
        from agents.demo import demo  # the demo (and its emulator) load only when asked for

        console = Console()
        logs.configure("text", "WARNING")
        try:
            connection = load_settings().get(args.connection) if args.connection else None
            done, summary = asyncio.run(
                demo(
                    console=console,
                    flows_dir=args.flows,
                    samples_dir=args.samples,
                    connection=connection,
                    follow=follow,
                    timeout_s=args.timeout,
                )
            )
        except (FlowLoadError, SettingsError, BrokerError, SalesforceError) as error:
            print(f"actionflows {name}: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        console.print(summary.table())
        return 0 if done else 1

    return command


@dataclass(frozen=True, slots=True)
class _WorkerStart:
    """Everything the worker command reads before it starts: arguments, settings, secrets."""

    worker: WorkerSettings
    connection: ConnectionSettings | None  # None: --emulator, made once running
    topics: CatalogueSettings
    engine: EngineSettings
    budget: BudgetPolicy
    observe: ObserveSettings
    external_id_fields: dict[str, str] | None
    event_loop: EventLoopName


def _worker_start(
    parser: argparse.ArgumentParser, args: argparse.Namespace, env: Mapping[str, str]
) -> _WorkerStart:
    """Read every setting the worker needs (secret files included), or stop at the first bad
    one with a sentence naming it. ``--check-config`` and a real start go through here."""
    try:
        observe = ObserveSettings.from_env(env)
        kafka = KafkaSettings.from_env(env)
        event_loop = event_loop_from_env(env)
    except ValueError as error:
        parser.error(str(error))
    if not kafka.bootstrap_servers:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS (or use `actionflows run` for a local broker)")
    connection = None if args.emulator else _connection(args.connection, env)
    if connection is None and not args.emulator:
        parser.error(
            "no Salesforce connection is configured (see docs/salesforce.md); "
            "pass --emulator to use the local emulator"
        )
    topics = topics_from_env(env)
    worker = replace(
        WorkerSettings.from_env(kafka.bootstrap_servers, env, security=kafka.security),
        flows_dir=args.flows,
        topic_partitions=topics.partitions,
    )
    return _WorkerStart(
        worker=worker,
        connection=connection,
        topics=topics,
        engine=engine_from_env(env),
        budget=budget_from_env(env),
        observe=observe,
        external_id_fields=external_id_fields_from_env(env),
        event_loop=event_loop,
    )


def _worker(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="actionflows worker",
        description="Run the worker: consume the input topics and run the flows.",
    )
    parser.add_argument("--flows", type=Path, default=ROOT / "flows", help="flow folder")
    parser.add_argument("--connection", help="the Salesforce connection (default: the default)")
    parser.add_argument(
        "--emulator", action="store_true", help="start an in-process Salesforce emulator and use it"
    )
    add_check_config(parser)
    args = parser.parse_args(argv)
    env = EnvironmentReads()
    start: _WorkerStart | None = None
    try:
        start = _worker_start(parser, args, env)
        if args.check_config:
            keys = start.external_id_fields
            if keys is None:
                keys = dict.fromkeys(OBJECTS_WITH_KEYS, DEFAULT_EXTERNAL_ID_FIELD)
            flows = load_flows(args.flows, external_id_fields=keys)  # as the worker loads them
            client_options(start.worker.security)  # the TLS files parse
            return report_config("worker", _worker_plan(start, len(flows)), env)
        logs.configure(start.observe.log_format, start.observe.log_level)
        loops.run(_serving(start), start.event_loop)
    except (FlowLoadError, SettingsError, ValueError, OSError) as error:  # OSError: a port taken
        print(f"actionflows worker: {error}", file=sys.stderr)
        return 1
    except SalesforceError as error:  # one that retrying cannot fix (TLS, configuration)
        print(f"actionflows worker: cannot log in to Salesforce: {error}", file=sys.stderr)
        return 1
    except KafkaError as error:  # no broker answered: aiokafka's error says only that
        assert start is not None
        worker = start.worker
        why = asyncio.run(explain_unreachable(worker.bootstrap_servers, worker.security))
        print(
            f"actionflows worker: cannot connect to Kafka at {worker.bootstrap_servers} "
            f"({worker.security.describe()}): {why or error}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _worker_plan(start: _WorkerStart, flows: int) -> list[str]:
    """What ``--check-config`` prints: what the worker would do, never a secret."""
    worker, topics, engine = start.worker, start.topics, start.engine
    if topics.replication_factor:
        replication = f"{topics.replication_factor} (min.insync.replicas {topics.min_insync_replicas or 'default'})"
    else:
        replication = "by the cluster's size (3 and min.insync.replicas 2 on three brokers)"
    connection = start.connection
    salesforce = (
        "an in-process emulator (--emulator)"
        if connection is None
        else f"connection {connection.name!r} at {connection.login_url}, API {connection.api_version}, "
        f"{connection.auth.value} as {connection.username or connection.client_id[:12] + '…'}"
    )
    http = start.observe.http
    return [
        f"kafka: {worker.bootstrap_servers} ({worker.security.describe()})",
        f"consumer group: {worker.app_id}, state in {worker.state_dir}",
        f"topics: prefix {topics.prefix}, {topics.partitions} partitions, replication {replication}",
        f"flows: {flows} from {worker.flows_dir}",
        f"salesforce: {salesforce}",
        f"in flight: at most {engine.max_in_flight} records; Salesforce calls gather for "
        f"{engine.salesforce_gather_s * 1000:g} ms; event loop: {start.event_loop}",
        "health and metrics: "
        + (f"http://{http.host}:{http.port} (/healthz, /readyz, /metrics)" if http else "off"),
        f"logs: {start.observe.log_format}, {start.observe.log_level}",
    ]


# How long the worker waits, once stopped, for threads that outlive its stop.
THREADS_GRACE_S = 2.0


async def _serving(start: _WorkerStart) -> None:
    try:
        await _serve(start)
    finally:
        await _leave_lingering_threads()


def _lingering() -> list[threading.Thread]:
    """Threads that would keep the process alive, but the event loop's own executor's (which
    the loop's runner shuts down after this)."""
    return [
        t for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
        and not t.name.startswith(loops.EXECUTOR_THREADS)
    ]  # fmt: skip


def _join(threads: list[threading.Thread], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))


async def _leave_lingering_threads() -> None:
    """Exit now if threads outlive the worker's stop. faust runs its Kafka consumer in a thread
    of its own; when no broker answers, that thread can go on retrying after the stop gave up
    on it, and faust's abandoned stop with it: ``asyncio.run`` would wait for that task, and
    Python for the thread, and the worker would ignore SIGTERM."""
    if lingering := _lingering():
        await asyncio.to_thread(_join, lingering, THREADS_GRACE_S)  # the loop keeps turning
        lingering = [thread for thread in lingering if thread.is_alive()]
    if not lingering:
        return
    logging.getLogger(__name__).warning(
        "exiting without waiting for %d thread(s) still running: %s",
        len(lingering), ", ".join(t.name for t in lingering),
    )  # fmt: skip
    code = 1 if sys.exc_info()[0] is not None else 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(start: _WorkerStart) -> None:
    worker = start.worker
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        connection = start.connection
        if connection is None:
            from sfemulator import Emulator, EmulatorConfig, emulator_connection  # --emulator only

            emulator = await stack.enter_async_context(Emulator(EmulatorConfig()))
            connection = emulator_connection(
                emulator.url, emulator.credentials, emulator.api_version
            )
        config = ServiceConfig(
            worker=worker,
            connection=connection,
            topics=start.topics,
            engine=start.engine,
            budget=start.budget,
            observe=start.observe,
        )
        if start.external_id_fields is not None:
            config = replace(config, external_id_fields=start.external_id_fields)
        service = Service(config)
        if not await _unless_stopped(service.login(), stop):
            return  # stopped while Salesforce refused the login
        await stack.enter_async_context(service)
        server = service.observability.server
        endpoints = f"; metrics and health at {server.url}" if server else ""
        print(
            f"worker {worker.app_id}: {len(service.flows)} flows, inputs "
            f"{', '.join(s.name for s in service.catalogue.inputs)}{endpoints}; Ctrl-C stops it"
        )
        await stop.wait()


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it is done, or cancel it when ``stop`` is set first; whether it was
    done. Its errors are raised."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


def _delegate(module: str, function: str = "main") -> Callable[[Sequence[str]], int]:
    def command(argv: Sequence[str]) -> int:
        return int(getattr(importlib.import_module(module), function)(list(argv)))

    return command


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "run": (
        "the main job: local Kafka, the emulator, the worker, live sample events",
        _demo_command(True),
    ),
    "demo": (
        "the same, exiting with a summary once the samples are processed",
        _demo_command(False),
    ),
    "worker": ("run the worker against KAFKA_BOOTSTRAP_SERVERS", _worker),
    "flows": ("validate flow files: flows validate DIR", _flows),
    "emulator": ("run the Salesforce emulator", _delegate("sfemulator.cli")),
    "connect": (
        "check a Salesforce connection and show its indicator",
        _delegate("salesforce.connect_cli"),
    ),
    "ingest": (
        "receive Zendesk webhooks and events over HTTP into the input topics",
        _delegate("agents.ingest.cli"),
    ),
    "kafka": ("run a local Kafka broker in the foreground", _kafka),
    "replay": (
        "republish a slice of an input topic, or --dry-run it",
        _delegate("agents.ops.replay"),
    ),
    "dlq": ("list, show and redrive dead letters", _delegate("agents.ops.dlq")),
    "api": (
        "index the output topics into the run history; serve its API and the console",
        _delegate("agents.history.service"),
    ),
    "console": (
        "the web console: the same process as api, its URL printed first",
        _delegate("agents.history.service", "console_main"),
    ),
    "runs": (
        "show runs from the run history: runs --ticket 35436",
        _delegate("agents.history.client"),
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<10} {text}" for name, (text, _) in COMMANDS.items())
        print(f"usage: actionflows COMMAND [options]\n\ncommands:\n{usage}")
        if args and args[0] not in {"-h", "--help"}:
            print(f"\nactionflows: unknown command {args[0]!r}", file=sys.stderr)
            return 2
        return 0 if args else 2
    return COMMANDS[args[0]][1](args[1:])


if __name__ == "__main__":
    sys.exit(main())
