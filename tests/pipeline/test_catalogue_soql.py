"""quote: every string becomes one literal that reads back as itself."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.catalogue.soql import quote, select_query
from tests.pipeline.catalogue_fakes import parse_literal, parse_query


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("Bob's BBQ", r"'Bob\'s BBQ'"),
        ("back\\slash", r"'back\\slash'"),
        ('say "hi"', r"'say \"hi\"'"),
        ("two\nlines\r\n", r"'two\nlines\r\n'"),
        ("tab\there", r"'tab\there'"),
        ("feed\f", r"'feed\f'"),
        (
            "bell\x07 backspace\x08 nul\x00 del\x7f",
            r"'bell\u0007 backspace\u0008 nul\u0000 del\u007f'",
        ),
        ("café ☕ 日本", "'café ☕ 日本'"),
        ("", "''"),
    ],
)
def test_escapes_reserved_and_control_characters(value: str, literal: str) -> None:
    """Quotes and backslashes are escaped as Salesforce documents; control characters too."""
    assert quote(value) == literal


def test_injection_stays_inside_the_literal() -> None:
    """A value that tries to close the literal and add a condition is only a value."""
    attack = "x' OR Name != '"
    query = select_query("Lead", ["Id"], [("Email", attack)], 2)
    assert query == (
        r"SELECT Id FROM Lead WHERE Email = 'x\' OR Name != \'' "
        "ORDER BY CreatedDate ASC, Id ASC LIMIT 2"
    )
    assert parse_query(query).where == (("Email", attack),)


@given(st.text())
@example("\\'")
@example("'\\")
@example("\\u0041")
@example("\ud7ff\U0010ffff")
def test_literal_reads_back_as_the_value(value: str) -> None:
    """Unescaping the literal gives the original string, and the literal ends where it should."""
    literal = quote(value)
    assert parse_literal(literal) == value


@given(st.text())
def test_literal_has_no_raw_control_characters(value: str) -> None:
    """The literal is one line of printable text: no raw newline, tab or other control code."""
    literal = quote(value)
    assert not any(c < " " or c == "\x7f" for c in literal)


@given(st.lists(st.tuples(st.sampled_from(["Name", "Email", "Phone"]), st.text()), max_size=3))
def test_query_conditions_parse_back(where: list[tuple[str, str]]) -> None:
    """Every condition of a built query parses back to its field and value, in order."""
    query = select_query("Account", ["Id", "Name"], where, 2)
    parsed = parse_query(query)
    assert parsed.where == tuple(where)
    assert parsed.limit == 2
