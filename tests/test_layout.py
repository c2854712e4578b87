"""The layout holds: imports point one way, and the worker does not ship the emulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the project packages it may import (STYLE.md: agents → (topics, salesforce) → pipeline)
ALLOWED = {
    "pipeline": {"pipeline"},
    "topics": {"topics", "pipeline"},
    "salesforce": {"salesforce", "pipeline"},
    "sfemulator": {"sfemulator", "salesforce", "pipeline"},
    "agents": {"agents", "topics", "salesforce", "pipeline", "localkafka", "sfemulator"},
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
    """Importing the worker, the engine, the service and the CLI leaves sfemulator unloaded:
    only the demo, `--emulator` and the tests load it, when asked."""
    code = (
        "import sys\n"
        "import agents.worker, agents.engine, agents.service, agents.cli\n"
        "import agents.ops.replay, agents.ops.dlq\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sfemulator'))\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
