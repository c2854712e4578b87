"""The layout holds: imports point one way, and the worker does not ship the emulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the project packages it may import (STYLE.md: agents → (topics, salesforce) → pipeline;
# zendesk, the Zendesk API client, stands alone beside salesforce)
ALLOWED = {
    "pipeline": {"pipeline"},
    "topics": {"topics", "pipeline"},
    "salesforce": {"salesforce", "pipeline"},
    "zendesk": {"zendesk"},
    "sfemulator": {"sfemulator", "salesforce", "pipeline"},
    "zdemulator": {"zdemulator", "zendesk"},
    "agents": {
        "agents",
        "topics",
        "salesforce",
        "zendesk",
        "pipeline",
        "localkafka",
        "sfemulator",
        "zdemulator",
    },
}
PROJECT = {*ALLOWED, "localkafka", "bench", "tests"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    """No module imports a package that sits above its own."""
    wrong = {
        f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        for path in (ROOT / package).rglob("*.py")
        if (bad := _imports(path) - ALLOWED[package])
    }
    assert not wrong


def test_the_worker_does_not_load_the_emulator() -> None:
    """Importing the worker, the engine, the service, the ingest and the CLI leaves both
    emulators unloaded: only the demo, `--emulator` and the tests load them, when asked."""
    code = (
        "import sys\n"
        "import agents.worker, agents.engine, agents.service, agents.cli\n"
        "import agents.ops.replay, agents.ops.dlq\n"
        "import agents.ingest.server, agents.ingest.cli\n"
        "emulators = {'sfemulator', 'zdemulator'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in emulators))\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
