"""The ``actionflows`` command. Each subcommand parses its own arguments and calls one entry point."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from agents.settings import KafkaSettings
from localkafka import BrokerError, BrokerOptions, LocalBroker


def _kafka(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="actionflows kafka",
        description="Run a local single-node Apache Kafka broker (KRaft) in the foreground.",
    )
    settings = KafkaSettings.from_env()
    parser.add_argument("--version", default=settings.local_version, help="Kafka version to run")
    parser.add_argument("--port", type=int, default=9092, help="loopback port (0: any free port)")
    parser.add_argument(
        "--partitions", type=int, default=1, help="default partitions of new topics"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, not {args.port}")
    options = BrokerOptions(kafka_version=args.version, port=args.port, partitions=args.partitions)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with LocalBroker(options) as broker:
            print(
                f"Kafka {args.version} ready at {broker.bootstrap_servers} "
                f"in {broker.startup_seconds:.1f}s (logs: {broker.log_path}); Ctrl-C stops it"
            )
            stop.wait()
    except BrokerError as error:
        print(f"actionflows kafka: {error}", file=sys.stderr)
        return 1
    return 0


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "kafka": ("run a local Kafka broker in the foreground", _kafka),
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
