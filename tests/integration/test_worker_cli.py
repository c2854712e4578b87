"""The worker command fails fast and says why when it cannot start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_taken_http_port_fails_at_once_with_one_line(kafka: str, unique: str) -> None:
    """Another process holds the metrics and health port: the worker exits 1 with a sentence
    naming the address, instead of hanging with faust's threads started (it used to ignore
    SIGTERM then)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "ACTIONFLOWS_APP_ID": f"port-{unique}",
            "ACTIONFLOWS_TOPIC_PREFIX": f"port-{unique}",
            "ACTIONFLOWS_HTTP_PORT": str(port),
        }
        done = subprocess.run(
            [sys.executable, "-m", "agents.cli", "worker", "--emulator"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("actionflows worker: ")
    assert f"cannot listen on 127.0.0.1:{port}" in last
