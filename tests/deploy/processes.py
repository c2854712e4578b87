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

import aiohttp
import orjson

from tests.kafkatools import wait_for

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


async def an_event_succeeds(
    processes: Processes,
    *,
    ingest: str,
    ingest_token: str,
    history: str,
    api_token: str,
    event_type: str,
    name: str,
    timeout_s: float = 240.0,
) -> str:
    """Post an event from an unknown requester to the ingest (``POST /events``) and wait until
    the run history shows its create-lead run succeeded; the event's id."""
    event_id = f"evt-{name}"
    event = {
        "id": event_id, "type": event_type, "source": "deploy-test",
        "ticket": {"id": f"T-{name}"},
        "requester": {"name": "Ada Lovelace", "email": f"ada-{name}@example.com"},
    }  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{ingest}/events",
            data=orjson.dumps(event),
            headers={"Authorization": f"Bearer {ingest_token}"},
        ) as answer:
            assert answer.status == 200, await answer.text()

        async def succeeded() -> list[dict[str, object]]:
            processes.check_alive()
            async with http.get(
                f"{history}/api/runs",
                params={"event": event_id, "flow": "create-lead-for-unknown-requester"},
                headers={"Authorization": f"Bearer {api_token}"},
            ) as answer:
                assert answer.status == 200, await answer.text()
                items: list[dict[str, object]] = (await answer.json())["items"]
            return [run for run in items if run["status"] == "succeeded"]

        await wait_for(succeeded, timeout_s=timeout_s, what=f"the run of {event_id} in the history")
    return event_id
