"""`actionflows connect`: settings → login → indicator printed, exit status says connected."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from salesforce.connect_cli import main
from sfemulator import Emulator, EmulatorConfig


@pytest.fixture
def running_emulator() -> Iterator[Emulator]:
    """An emulator serving from its own thread, since main() runs its own event loop."""
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["stop"] = (asyncio.get_running_loop(), stop)
        async with Emulator(EmulatorConfig()) as emu:
            holder["emu"] = emu
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    emu = holder["emu"]
    assert isinstance(emu, Emulator)
    yield emu
    loop, stop = holder["stop"]  # type: ignore[misc]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_connect_to_the_emulator(
    running_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With env settings for the emulator, connect exits 0 and prints the org and actions."""
    creds = running_emulator.credentials
    key = tmp_path / "emu.key"
    key.write_text(creds.private_key_pem)
    for name, value in {
        "LOGIN_URL": running_emulator.url,
        "API_VERSION": running_emulator.api_version,
        "CLIENT_ID": creds.client_id,
        "USERNAME": creds.username,
        "PRIVATE_KEY_FILE": str(key),
    }.items():
        monkeypatch.setenv(f"ACTIONFLOWS_SF_EMU_{name}", value)
    assert main(["--connection", "emu", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["connected"] is True
    assert shown["org_id"] == creds.org_id
    assert any(a["name"] == "salesforce.convert_lead lead" for a in shown["actions"])
    assert creds.private_key_pem.splitlines()[1] not in str(shown)
    assert main(["--connection", "emu"]) == 0
    assert "● connected" in capsys.readouterr().out  # not a substring of "● not connected"


def test_unusable_settings_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A connection that is not configured exits 2 with the reason."""
    monkeypatch.delenv("ACTIONFLOWS_SF_CONNECTIONS_FILE", raising=False)
    assert main(["--connection", "nope"]) == 2
    assert "nope" in capsys.readouterr().out


def test_refused_login_exits_1(
    running_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused login exits 1 and says why."""
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_LOGIN_URL", running_emulator.url)
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_API_VERSION", running_emulator.api_version)
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_AUTH", "password")
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_CLIENT_ID", running_emulator.credentials.client_id)
    monkeypatch.setenv(
        "ACTIONFLOWS_SF_BAD_CLIENT_SECRET", running_emulator.credentials.client_secret
    )
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_USERNAME", running_emulator.credentials.username)
    monkeypatch.setenv("ACTIONFLOWS_SF_BAD_PASSWORD", "wrong")
    assert main(["--connection", "bad"]) == 1
    assert "not connected" in capsys.readouterr().out
