"""A trigger's event-type patterns, compiled into one expression, match as fnmatchcase does."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given
from hypothesis import strategies as st

from pipeline.plan import _types_pattern

_TEXT = st.text(alphabet="tickeda.*?[]!\n_-", max_size=12)


@given(patterns=st.lists(_TEXT, min_size=1, max_size=3), name=_TEXT)
def test_the_compiled_patterns_agree_with_fnmatchcase(patterns: list[str], name: str) -> None:
    expected = any(fnmatchcase(name, p) for p in patterns)
    assert bool(_types_pattern(tuple(patterns)).match(name)) is expected
