"""Real processes for the reliability tests and ``make chaos``: workers, an emulator, and its admin.

- :class:`WorkerProcess` runs ``actionflows worker`` as a child process with settings from its
  environment (:func:`worker_env`), and stops it by its PID: SIGKILL for a crash, SIGTERM for a
  graceful stop (which must end it within a bound, or the stop is reported as a failure).
- :class:`EmulatorProcess` runs the Salesforce emulator in a child process of its own.
- :class:`EmulatorAdmin` drives an emulator through its ``/__emulator/`` routes over HTTP, so a
  test reads fault counts the same way whether the emulator runs in its process or another.

Waits for child processes run in a thread, so an emulator served by the caller's event loop
keeps answering while the caller waits.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from sfemulator import DemoCredentials, Emulator, EmulatorConfig, FaultRule


@dataclass(frozen=True, slots=True)
class EmulatorAddress:
    """Where an emulator listens and how to log in to it."""

    url: str
    credentials: DemoCredentials
    api_version: str

    @classmethod
    def of(cls, emulator: Emulator) -> EmulatorAddress:
        return cls(emulator.url, emulator.credentials, emulator.api_version)


def worker_env(
    kafka: str, app_id: str, prefix: str, emulator: EmulatorAddress, **settings: str
) -> dict[str, str]:
    """The environment of a worker on ``kafka`` and the emulator, with topics under ``prefix``.

    ``settings`` are further variables without their ``ACTIONFLOWS_`` prefix, e.g.
    ``LEDGER="off"`` or ``PARTITIONS="3"`` (see agents/settings.py).
    """
    creds = emulator.credentials
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ACTIONFLOWS_APP_ID": app_id,
        "ACTIONFLOWS_TOPIC_PREFIX": prefix,
        "ACTIONFLOWS_SF_EMU_LOGIN_URL": emulator.url,
        "ACTIONFLOWS_SF_EMU_CLIENT_ID": creds.client_id,
        "ACTIONFLOWS_SF_EMU_USERNAME": creds.username,
        "ACTIONFLOWS_SF_EMU_PRIVATE_KEY": creds.private_key_pem,
        "ACTIONFLOWS_SF_EMU_AUDIENCE": "https://login.salesforce.com",
        "ACTIONFLOWS_SF_EMU_API_VERSION": emulator.api_version,
        "ACTIONFLOWS_HTTP_PORT": "0",  # several workers on one host: a free port each
        **{f"ACTIONFLOWS_{name}": value for name, value in settings.items()},
    }


class WorkerProcess:
    """One ``actionflows worker`` child process; its output is appended to ``log``."""

    def __init__(self, env: Mapping[str, str], flows: Path, log: Path) -> None:
        self.env = dict(env)
        self.flows = flows
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "agents.cli", "worker", "--flows", str(self.flows)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exit_code(self) -> int | None:
        """None while it runs (or before it started)."""
        return self.process.poll() if self.process is not None else None

    def assert_running(self) -> None:
        """Raise, with the end of its log, if the worker has exited."""
        if self.exit_code is not None:
            raise AssertionError(f"the worker exited with {self.exit_code}\n{self.tail()}")

    async def kill(self) -> None:
        """SIGKILL: a crash. Waits until the process is gone."""
        await self._signal(signal.SIGKILL)

    async def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, a graceful stop; raises if the worker ignores it for ``timeout_s``."""
        await self._signal(signal.SIGTERM, timeout_s)

    async def _signal(self, sig: signal.Signals, timeout_s: float = 30.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            await asyncio.to_thread(process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
            raise AssertionError(
                f"worker {process.pid} ignored {sig.name} for {timeout_s}s\n{self.tail()}"
            ) from None

    def tail(self, chars: int = 3000) -> str:
        """The end of the worker's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class EmulatorAdmin:
    """The emulator's ``/__emulator/`` routes, over HTTP. ``async with`` opens its session."""

    def __init__(self, url: str) -> None:
        self.base = f"{url}/__emulator"
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EmulatorAdmin:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def _call(self, method: str, route: str, body: Any = None) -> Any:
        assert self._http is not None, "use EmulatorAdmin as an async context manager"
        async with self._http.request(method, f"{self.base}/{route}", json=body) as response:
            payload = await response.json()
            if response.status >= 400:
                raise AssertionError(f"{method} /__emulator/{route}: {response.status} {payload}")
            return payload

    async def fault_counts(self) -> dict[str, Any]:
        """``{"fired": {kind: n}, "rules": [{"rule", "fired"}], "withheld": n}``."""
        counts: dict[str, Any] = await self._call("GET", "fault-counts")
        return counts

    async def set_faults(self, rules: Sequence[FaultRule]) -> None:
        await self._call("PUT", "faults", [rule.to_dict() for rule in rules])

    async def release(self) -> int:
        """End the holds of ``fail_after_commit`` rules with ``latency_ms``; how many ended."""
        released: int = (await self._call("POST", "release"))["released"]
        return released

    async def expire_tokens(self) -> None:
        await self._call("POST", "expire-tokens")

    async def advance_clock(self, seconds: float) -> None:
        await self._call("POST", "clock", {"advance_s": seconds})

    async def records(self, sobject: str) -> list[dict[str, Any]]:
        state = await self._call("GET", f"state?sobject={sobject}")
        records: list[dict[str, Any]] = state["records"][sobject]
        return records

    async def api_usage(self) -> tuple[int, int]:
        usage = (await self._call("GET", "state?sobject=Organization"))["api_usage"]
        return int(usage["used"]), int(usage["limit"])


def _serve_emulator(config: EmulatorConfig, conn: Connection) -> None:  # the child process
    async def main() -> None:
        async with Emulator(config) as emu:
            conn.send(EmulatorAddress.of(emu))
            await asyncio.to_thread(conn.recv)  # any message (or the parent's end) stops it

    asyncio.run(main())


class EmulatorProcess:
    """The emulator in a process of its own. ``with EmulatorProcess(config) as address: …``"""

    def __init__(self, config: EmulatorConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_emulator, args=(config, child), name="sf-emulator", daemon=True
        )

    def __enter__(self) -> EmulatorAddress:
        self._process.start()
        address: EmulatorAddress = self._conn.recv()
        return address

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)
