"""``actionflows emulator``: serve an emulated org until SIGINT/SIGTERM.

Prints the base URL and the demo credentials; the JWT signing key is written to a 0600 file and
only its path is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

from .config import EmulatorConfig
from .emulator import Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actionflows emulator", description="Run a local Salesforce org emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="port; 0 picks a free one (8443)")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate, written beside the key",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds IDs, credentials, fault draws and latency jitter (0)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="baseline latency added to every request (0)"
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=7200.0,
        metavar="S",
        help="session timeout in seconds (7200)",
    )
    parser.add_argument(
        "--daily-limit",
        type=int,
        default=15000,
        metavar="N",
        help="API requests per rolling 24 hours (15000, a Developer Edition)",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help="where to write the JWT signing key (default: a temp file)",
    )
    return parser


async def _serve(config: EmulatorConfig, key_file: Path | None) -> None:
    async with Emulator(config) as emu:
        creds = emu.credentials
        if key_file is None:
            key_dir = Path(tempfile.mkdtemp(prefix="actionflows-emulator-"))
            key_file = key_dir / "jwt-private-key.pem"
        key_file.write_text(creds.private_key_pem)
        key_file.chmod(0o600)
        cert_line = []
        if emu.tls_certificate_pem:
            cert_file = key_file.with_name("tls-certificate.pem")
            cert_file.write_text(emu.tls_certificate_pem)
            cert_line = [f"  TLS certificate : {cert_file} (trust it as a CA)"]
        lines = [
            f"Salesforce emulator listening on {emu.url} (API v{emu.api_version})",
            f"  login/token URL : {emu.url}/services/oauth2/token",
            f"  instance URL    : {emu.url}",
            f"  client_id       : {creds.client_id}",
            f"  client_secret   : {creds.client_secret}",
            f"  username        : {creds.username}",
            f"  password        : {creds.password}",
            f"  JWT private key : {key_file}",
            f"  org_id/user_id  : {creds.org_id} / {creds.user_id}",
            *cert_line,
            "Press Ctrl+C to stop.",
        ]
        print("\n".join(lines), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        tls=args.tls,
        seed=args.seed,
        latency_ms=args.latency_ms,
        token_lifetime_s=args.token_lifetime,
        daily_api_limit=args.daily_limit,
    )
    try:
        asyncio.run(_serve(config, args.key_file))
    except OSError as err:
        print(f"cannot start the emulator: {err}", file=sys.stderr)
        return 1
    return 0
