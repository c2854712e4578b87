"""Services as plain processes, for the deployment tests: started with an environment of their
own, output to a log file, waited on with a deadline, ended by PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


def actionflows(argv: Sequence[str]) -> list[str]:
    """``actionflows …`` as this interpreter runs it (the same code, no installed script)."""
    assert argv[0] == "actionflows", argv
    return [sys.executable, "-m", "agents.cli", *argv[1:]]


def base_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """What a container would have: the system's basics and ``extra``, and none of this test
    run's own ACTIONFLOWS_*/KAFKA_* variables (--check-config would count them as unread)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME", "SYSTEMROOT")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


class Processes:
    """The processes one test started; :meth:`stop` ends every one of them."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self._files.append(log)
        self.running[name] = subprocess.Popen(  # noqa: S603 - our own command
            list(argv), env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def log(self, name: str, last: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-last:] if path.exists() else ""

    def logs_of_all(self, last: int = 2000) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name, last)}" for name in self.running)

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for file in self._files:
            file.close()


async def wait_healthy(
    processes: Processes,
    name: str,
    probe: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout_s: float = 120.0,
) -> None:
    """Run a healthcheck command until it exits 0 (the service is ready), while the service's
    process lives; fail with its log otherwise."""
    deadline = time.monotonic() + timeout_s
    last = b""
    while True:
        processes.check_alive()
        check = await asyncio.create_subprocess_exec(
            *probe,
            env=dict(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        last, _ = await check.communicate()
        if check.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{name} was not healthy within {timeout_s:.0f}s; the probe said "
                f"{last.decode(errors='replace')[-600:]}\n{processes.log(name)}"
            )
        await asyncio.sleep(0.5)  # the polling interval of a bounded wait
