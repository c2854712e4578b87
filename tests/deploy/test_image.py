"""What the Dockerfile builds from, checked without Docker: the runtime lock it installs with
--no-deps is requirements.lock's own pins and holds every runtime dependency, so the image
resolves nothing and misses nothing; the image runs as a user of its own."""

from __future__ import annotations

import re
from importlib.metadata import requires
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.processes import ROOT


def pins(lock: Path) -> dict[str, Requirement]:
    found = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def runtime_closure() -> set[str]:
    """The distributions the installed project needs at run time (no extras), for this
    platform: its dependencies, theirs, and so on."""
    environment = {**default_environment(), "extra": ""}
    needed: set[str] = set()
    todo = ["actionflows"]
    while todo:
        name = todo.pop()
        for text in requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in needed:
                needed.add(dependency)
                todo.append(dependency)
    return needed


def test_the_runtime_lock_is_requirements_lock_without_the_dev_tools() -> None:
    full, runtime = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-runtime.lock")
    differing = {
        name: (str(pin.specifier), str(full[name].specifier) if name in full else None)
        for name, pin in runtime.items()
        if name not in full or pin.specifier != full[name].specifier
    }
    assert differing == {}, "run `make lock`"
    missing = sorted(runtime_closure() - set(runtime))
    assert missing == [], "run `make lock`"
    assert not {"pytest", "mypy", "ruff", "check-jsonschema"} & set(runtime)


def test_the_dockerfile_installs_the_lock_then_the_project_without_resolving() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2
    assert "pip install --no-deps -r requirements-runtime.lock" in text
    assert "pip install --no-deps ." in text
    user = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert user == ["actionflows:actionflows"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # everything left out but what is named
    assert "!requirements-runtime.lock" in ignored
    rules = [line for line in ignored if not line.startswith("#")]
    assert not [rule for rule in rules if "secrets" in rule or "tests" in rule]
