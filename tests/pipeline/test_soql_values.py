"""SOQL values of every type: whatever the value, it stays one literal that decodes back to itself."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.catalogue.soql import escape, quote, quote_like, quote_list

_DECODE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def read_literal(text: str, *, like: bool = False) -> tuple[str, int]:
    """Parse a quoted SOQL literal as Salesforce does; return its value and where it ended."""
    assert text[0] == "'"
    out: list[str] = []
    i = 1
    while True:
        char = text[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\":
            nxt = text[i + 1]
            if like and nxt in "%_":
                out.append(nxt)
            elif nxt == "u":
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 4
            else:
                out.append(_DECODE[nxt])  # an unknown escape is a MALFORMED_QUERY
            i += 2
            continue
        if char in "\n\r":
            raise AssertionError("raw line break inside a literal")
        out.append(char)
        i += 1


@given(st.text())
def test_quote_round_trips_and_never_closes_early(value: str) -> None:
    """quote(v) is exactly one literal spanning the whole text, decoding to v."""
    literal = quote(value)
    decoded, end = read_literal(literal)
    assert decoded == value
    assert end == len(literal)


@given(st.text())
def test_injection_attempts_stay_inside_the_literal(suffix: str) -> None:
    """A value built to break out (quote, backslash, OR clause) cannot end the literal early."""
    value = "x' OR Name != '" + suffix + "\\"
    soql = f"SELECT Id FROM Lead WHERE Email = {quote(value)} LIMIT 1"
    literal_start = soql.index("'")
    decoded, end = read_literal(soql[literal_start:])
    assert decoded == value
    assert soql[literal_start + end :] == " LIMIT 1"


@given(st.text())
def test_like_escapes_wildcards(value: str) -> None:
    """In a LIKE pattern, % and _ from the value are escaped and match only themselves."""
    literal = quote_like(value, suffix="%")
    body = literal[1:-2]
    assert literal.endswith("%'")
    decoded, _ = read_literal("'" + body + "'", like=True)
    assert decoded == value
    unescaped = body.replace("\\\\", "").replace("\\%", "").replace("\\_", "")
    assert "%" not in unescaped
    assert "_" not in unescaped


def test_like_wildcards_are_only_wildcards() -> None:
    """prefix/suffix of quote_like accept only % and _ (no way to smuggle a quote in)."""
    with pytest.raises(ValueError, match="wildcards"):
        quote_like("a", suffix="' OR ''='")


def test_non_string_literals() -> None:
    """None, booleans, numbers and dates become bare SOQL literals."""
    assert quote(None) == "null"
    assert quote(True) == "true"
    assert quote(3) == "3"
    assert quote(Decimal("1.50")) == "1.50"
    assert quote(dt.date(2026, 1, 2)) == "2026-01-02"
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert quote(stamp) == "2026-01-02T02:04:05Z"
    assert quote_list(["a'b", 1]) == "('a\\'b', 1)"
    assert escape("a\nb") == "a\\nb"
    with pytest.raises(ValueError, match="timezone"):
        quote(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="IN"):
        quote_list([])
    with pytest.raises(TypeError):
        quote(object())
