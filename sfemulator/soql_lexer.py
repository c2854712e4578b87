"""SOQL's lexical layer: tokens with their positions, and reading string literals.

``unescape`` reads a literal's body (SOQL escapes quotes, backslash, n r t b f, \\uXXXX). The
emulator never quotes: the client's :mod:`pipeline.catalogue.soql` does, and the tests check that
what it writes reads back here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(Exception):
    """A query the parser or resolver rejects: errorCode, message, and 0-based offset."""

    def __init__(self, code: str, message: str, pos: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos


def unescape(raw: str, pos: int = 0, *, like: bool = False) -> str:
    """The value of a literal's body. With ``like``, ``\\%`` and ``\\_`` stay escaped."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _ESCAPES:
                out.append("\\\\" if like and nxt == "\\" else _ESCAPES[nxt])
            elif nxt in {"%", "_"}:
                out.append(("\\" + nxt) if like else nxt)
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
                out.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 4
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{raw}'. Illegal "
                    f"character sequence '\\{nxt}' in string literal.",
                    pos,
                )
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Token:
    kind: str  # word string number date datetime op eof
    text: str
    pos: int


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|:)
""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            bad = text[pos]
            kind = "string" if bad == "'" else "char"
            message = (
                "unterminated string literal" if kind == "string" else f"unexpected token: '{bad}'"
            )
            raise SoqlError("MALFORMED_QUERY", message, pos)
        if match.lastgroup != "ws":
            tokens.append(Token(match.lastgroup or "", match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens
