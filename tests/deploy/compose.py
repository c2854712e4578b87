"""docker-compose.yml as the deployment tests read it: its services, their commands, variables,
secrets and healthchecks, moved from containers onto this machine.

:func:`adapt` rewrites only what a container has and this machine has not: the secret files
under /run/secrets, the emulator's key volume, the image's /app/flows, the brokers' host names,
other services' host names and ports, wildcard binds (0.0.0.0 becomes 127.0.0.1), and, to run
beside other tests, the topic prefix and consumer group. Commands, variable names and every
other value are the file's own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.processes import ROOT, actionflows, base_environment

COMPOSE = ROOT / "docker-compose.yml"
SECRETS_IN_CONTAINER = "/run/secrets/"
EMULATOR_KEY_DIR = "/var/lib/actionflows-emulator"


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def app_services(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the project's image (not the brokers)."""
    return {
        name: service
        for name, service in document["services"].items()
        if str(service.get("image", "")).startswith("actionflows")
    }


def start_order(document: Mapping[str, Any]) -> list[str]:
    """The project's services in an order that honours their ``depends_on``."""
    services = app_services(document)
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in services:
            return
        for dependency in services[name].get("depends_on", {}):
            visit(dependency)
        order.append(name)

    for name in services:
        visit(name)
    return order


def healthcheck(service: Mapping[str, Any]) -> tuple[list[str], str]:
    """The healthcheck's command (``CMD`` dropped) and the URL it probes."""
    test = list(service["healthcheck"]["test"])
    assert test[0] == "CMD", test
    return test[1:], test[-1]


def own_port(service: Mapping[str, Any]) -> int:
    """The port the service listens on, as its healthcheck dials it."""
    _, url = healthcheck(service)
    match = re.search(r":(\d+)/", url)
    assert match is not None, url
    return int(match.group(1))


@dataclass
class Moves:
    """How a container's world maps onto this machine."""

    secrets: Path  # holds a file per compose secret, named as the compose file's `file:`
    emulator_keys: Path
    bootstrap: str | None = None  # None: keep the brokers' names (nothing connects)
    ports: dict[str, int] = field(default_factory=dict)  # service -> its port here
    unique: str | None = None  # a suffix for the topic prefix and the consumer group
    state: Path | None = None  # for the worker's state and the history's database


@dataclass(frozen=True)
class Adapted:
    argv: list[str]
    env: dict[str, str]
    probe: list[str]  # the healthcheck command, with its URL moved too


def secret_files(document: Mapping[str, Any]) -> dict[str, str]:
    """Each compose secret's name and the file name of its ``file:``."""
    return {name: Path(spec["file"]).name for name, spec in document["secrets"].items()}


def adapt(document: Mapping[str, Any], name: str, moves: Moves) -> Adapted:
    service = app_services(document)[name]
    files = secret_files(document)
    replacements: list[tuple[str, str]] = [
        *((f"{SECRETS_IN_CONTAINER}{s}", str(moves.secrets / f)) for s, f in files.items()),
        (EMULATOR_KEY_DIR, str(moves.emulator_keys)),
        ("/app/flows", str(ROOT / "flows")),
    ]
    if moves.state is not None:
        replacements += [
            ("/var/lib/actionflows/history", str(moves.state / "history")),
            ("/tmp/actionflows", str(moves.state / f"{name}-state")),  # noqa: S108 - the container's path
        ]
    if moves.ports:
        replacements.append(("0.0.0.0", "127.0.0.1"))  # noqa: S104 - the container's bind
        for other, port in moves.ports.items():
            original = own_port(document["services"][other])
            replacements.append((f"{other}:{original}", f"127.0.0.1:{port}"))

    def move(text: str, *, own: bool) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        if own and name in moves.ports:  # this service's own port, wherever it is given
            original, port = str(own_port(service)), str(moves.ports[name])
            text = re.sub(rf"(?<=127\.0\.0\.1:){original}\b", port, text)
            text = re.sub(rf"^(--port=){original}$", rf"\g<1>{port}", text)
        return text

    env = {
        key: move(str(value), own=False) for key, value in service.get("environment", {}).items()
    }
    if moves.ports and name in moves.ports:
        original = str(own_port(service))
        env = {k: (str(moves.ports[name]) if k.endswith("_PORT") and v == original else v)
               for k, v in env.items()}  # fmt: skip
    if moves.bootstrap is not None and "KAFKA_BOOTSTRAP_SERVERS" in env:
        env["KAFKA_BOOTSTRAP_SERVERS"] = moves.bootstrap
    if moves.unique is not None:
        for key in ("ACTIONFLOWS_TOPIC_PREFIX", "ACTIONFLOWS_APP_ID"):
            if key in env:
                env[key] = f"{env[key]}-{moves.unique}"
    argv = actionflows([move(str(arg), own=True) for arg in service["command"]])
    probe, _ = healthcheck(service)
    if probe[0] == "python":
        probe = [sys.executable, *probe[1:]]
    probe = [move(part, own=True) for part in probe]
    return Adapted(argv, base_environment(env), probe)
