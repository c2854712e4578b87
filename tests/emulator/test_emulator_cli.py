"""``python -m sfemulator`` serves until SIGTERM and prints where things are."""

from __future__ import annotations

import asyncio
import re
import signal
import stat
import sys
from pathlib import Path

import aiohttp


async def test_cli_serves_prints_credentials_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The CLI prints the URL and credentials (key as a path only) and exits 0 on SIGTERM."""
    key_file = tmp_path / "jwt.pem"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sfemulator",
        "--port",
        "0",
        "--seed",
        "4",
        "--daily-limit",
        "500",
        "--key-file",
        str(key_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Press Ctrl+C"):
                lines.append((await proc.stdout.readline()).decode().rstrip())
        banner = "\n".join(lines)
        url = re.search(r"listening on (http://\S+)", banner).group(1)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http, http.get(f"{url}/services/data/") as resp:
            assert resp.status == 200
        assert f"JWT private key : {key_file}" in banner
        assert "PRIVATE KEY" not in banner
        assert "client_id" in banner
        assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await proc.wait()
    assert code == 0
