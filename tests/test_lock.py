"""requirements.lock matches pyproject.toml, and this environment runs what it pins.

``make install`` installs requirements.lock, then the project without dependencies;
``make lock`` rewrites the lock with uv after pyproject.toml changed. These checks fail when
someone edits one and not the other.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DIRECT = "actionflows (pyproject.toml)"  # how uv marks a dependency pyproject.toml declares


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    direct: bool

    @property
    def version(self) -> str:
        (spec,) = self.requirement.specifier
        return spec.version


def locked() -> dict[str, Pin]:
    """The lock's pins by canonical name, each with whether pyproject.toml asked for it."""
    pins: dict[str, Pin] = {}
    current: str | None = None
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    for line in lines:
        if not line.strip() or (line.startswith("#") and current is None):
            continue
        if line.startswith(" "):  # the "# via" comments under a pin
            if current is not None and DIRECT in line:
                pins[current] = Pin(pins[current].requirement, True)
            continue
        requirement = Requirement(line)
        current = canonicalize_name(requirement.name)
        pins[current] = Pin(requirement, False)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(text) for text in [*project["dependencies"], *extras.get("dev", [])]]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    """Each dependency of pyproject.toml (dev included) has a pin its range allows."""
    pins = locked()
    wrong = {
        str(req): pins[name].version if name in pins else "not in the lock"
        for req in declared()
        if (name := canonicalize_name(req.name)) not in pins
        or not req.specifier.contains(pins[name].version, prereleases=True)
    }
    assert wrong == {}, "run `make lock`"


def test_the_lock_pins_no_dependency_pyproject_dropped() -> None:
    """Every pin the lock says pyproject.toml asked for is still declared there."""
    names = {canonicalize_name(req.name) for req in declared()}
    stale = sorted(name for name, pin in locked().items() if pin.direct and name not in names)
    assert stale == [], "run `make lock`"


def test_this_environment_runs_the_locked_versions() -> None:
    """What is installed is what the lock pins (for this platform's markers)."""
    mismatched = {}
    for name, pin in locked().items():
        marker = pin.requirement.marker
        if marker is not None and not marker.evaluate():
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            mismatched[name] = f"{installed}, locked {pin.version}"
    assert mismatched == {}, "run `make install`"
