"""``actionflows emulator``: serve an emulated org until SIGINT/SIGTERM.

Prints the base URL and the demo credentials; the JWT signing key is written to a 0600 file and
only its path is printed. With ``--key-file`` naming a file that exists, the emulator signs with
that key instead of a fresh one: the key survives restarts and can sit on a volume that workers
read (docker-compose.yml). ``--check-config`` prints what would be served and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

from .config import DemoCredentials, EmulatorConfig
from .credentials import demo_credentials, with_signing_key
from .emulator import Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actionflows emulator", description="Run a local Salesforce org emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="port; 0 picks a free one (8443)")
    parser.add_argument(
        "--public-url",
        help="the URL clients reach the emulator at, given out as the instance URL "
        "(default: from --host and --port)",
    )
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
        help="the JWT signing key: used if the file exists, else created there (0600); "
        "default: a new key in a temporary folder",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="read the arguments and the key file, print what would be served, and exit",
    )
    return parser


def _credentials(seed: int, key_file: Path | None) -> DemoCredentials:
    """The demo org's credentials for ``seed``, signing with the key in ``key_file`` if that
    file exists. Raises OSError or ValueError for a key file that cannot be used."""
    credentials = demo_credentials(seed)
    if key_file is not None and key_file.exists():
        credentials = with_signing_key(credentials, key_file.read_text())
    return credentials


def _keep_key(credentials: DemoCredentials, key_file: Path | None) -> Path:
    """Where the signing key is: ``key_file`` (written unless it exists) or a new temp file."""
    if key_file is None:
        key_file = Path(tempfile.mkdtemp(prefix="actionflows-emulator-")) / "jwt-private-key.pem"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(0o600)  # private from the first byte
        key_file.write_text(credentials.private_key_pem)
    return key_file


async def _serve(config: EmulatorConfig, key_file: Path | None) -> None:
    async with Emulator(config) as emu:
        creds = emu.credentials
        key_file = _keep_key(creds, key_file)
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
    try:
        config = EmulatorConfig(
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            tls=args.tls,
            seed=args.seed,
            latency_ms=args.latency_ms,
            token_lifetime_s=args.token_lifetime,
            daily_api_limit=args.daily_limit,
            credentials=_credentials(args.seed, args.key_file),
        )
    except (OSError, ValueError) as err:
        print(f"cannot start the emulator: {args.key_file}: {err}", file=sys.stderr)
        return 1
    if args.check_config:
        creds = config.credentials
        assert creds is not None
        key = args.key_file if args.key_file is not None else "a new temporary file"
        reuse = "reused" if args.key_file is not None and args.key_file.exists() else "created"
        print(
            "actionflows emulator: the configuration is valid; it would run with\n"
            f"  listen: {'https' if args.tls else 'http'}://{args.host}:{args.port}\n"
            f"  instance URL: {args.public_url or 'from the listening address'}\n"
            f"  client_id: {creds.client_id}\n"
            f"  username: {creds.username}\n"
            f"  JWT signing key: {key} ({reuse})"
        )
        return 0
    try:
        asyncio.run(_serve(config, args.key_file))
    except OSError as err:
        print(f"cannot start the emulator: {err}", file=sys.stderr)
        return 1
    return 0
