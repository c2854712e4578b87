"""Record IDs: the published checksum vectors and the 15/18-character round trips."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesforce.ids import KEY_PREFIXES, checksum, normalize, object_for, to18
from sfemulator.ids import IdFactory

ID15 = st.text(alphabet=string.ascii_letters + string.digits, min_size=15, max_size=15)


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [
        ("a0RE000000IJmcN", "MAT"),
        ("001M000000qfPyS", "IAU"),
        ("AbCdEfGhIjKlMnO", "VKV"),
        ("aBcDEfgHIJKLMNO", "025"),
        ("a0D30000001n7Pi", "EAI"),
        ("70130000001tcyI", "AAQ"),
    ],
)
def test_checksum_matches_published_vectors(id15: str, suffix: str) -> None:
    """The 3-character suffix matches the test vectors quoted in the reference (§5)."""
    assert checksum(id15) == suffix


@given(ID15)
def test_18_character_ids_are_case_insensitive(id15: str) -> None:
    """Any letter case of an 18-character ID normalises back to the same ID."""
    full = to18(id15)
    assert normalize(full.lower()) == full
    assert normalize(full.upper()) == full
    assert normalize(id15) == full


def test_a_suffix_that_contradicts_the_id_is_malformed() -> None:
    """A suffix bit set over a digit cannot describe the ID, so it is malformed."""
    assert normalize("001000000000000AAA") == "001000000000000AAA"
    assert normalize("001000000000000BAA") is None


def test_malformed_shapes_are_refused() -> None:
    """Wrong lengths and non-alphanumerics are not IDs."""
    for raw in ("", "abc", "00Q" + "0" * 13, "00Q00000000000!", "00Q000000000000AA$"):
        assert normalize(raw) is None


def test_generated_ids_are_valid_unique_and_prefixed() -> None:
    """The seeded factory yields 18-character IDs with each object's real key prefix."""
    factory = IdFactory(42)
    seen = set()
    for sobject, prefix in KEY_PREFIXES.items():
        for _ in range(50):
            new = factory.new(sobject)
            assert len(new) == 18
            assert new.startswith(prefix)
            assert normalize(new) == new
            assert object_for(new) == sobject
            seen.add(new)
    assert len(seen) == 50 * len(KEY_PREFIXES)
    assert IdFactory(42).new("Lead") == IdFactory(42).new("Lead")
