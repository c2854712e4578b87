"""The flow corpus: every valid file loads; every invalid file fails with the expected error.

Each file in ``tests/flows_corpus/invalid`` says on line 1 ``# expect: <substring>``; the file
must produce an error whose one-line form contains it, and every error must name the file.
Add a case by adding a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.loader import compile_text, validate_file

CORPUS = Path(__file__).resolve().parents[1] / "flows_corpus"
VALID = sorted((CORPUS / "valid").glob("*.y*ml"))
INVALID = sorted((CORPUS / "invalid").glob("*.y*ml"))


def test_the_corpus_is_not_empty() -> None:
    """A glob that finds nothing must not pass silently."""
    assert len(VALID) >= 4
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_flows_load(path: Path) -> None:
    """A valid file has no error and compiles to a plan."""
    assert [str(error) for error in validate_file(path)] == []
    assert compile_text(path.read_text(), file=str(path)).steps


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_flows_fail_with_the_expected_error(path: Path) -> None:
    """An invalid file reports the expected error, naming the file (and a path or line)."""
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# expect: "), "line 1 must say what error to expect"
    expected = first_line.removeprefix("# expect: ")
    errors = validate_file(path)
    messages = [str(error) for error in errors]
    assert any(expected in message for message in messages), messages
    assert all(message.startswith(f"{path}: ") for message in messages)
    assert all(error.path or error.line for error in errors)
