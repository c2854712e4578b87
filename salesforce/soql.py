"""Injection-safe SOQL literals.

SOQL string literals are single-quoted; inside them Salesforce recognises the escapes ``\\'``,
``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f`` and, in LIKE patterns only, ``\\%``
and ``\\_`` (SOQL and SOSL Reference, "Quoted String Escape Sequences"). Every value that reaches
a query goes through :func:`quote` (or :func:`quote_like`), never through string formatting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}


def escape(value: str, *, like: bool = False) -> str:
    """The body of a quoted literal; with ``like``, ``%`` and ``_`` match only themselves."""
    table = {**_ESCAPES, **_LIKE_ESCAPES} if like else _ESCAPES
    return "".join(table.get(char, char) for char in value)


def quote(value: object) -> str:
    """A SOQL literal for a Python value: strings quoted, booleans, numbers, dates and null bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("SOQL has no literal for NaN or infinity")
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("SOQL datetimes need a timezone")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return f"'{escape(value)}'"
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


def quote_like(value: str, *, prefix: str = "", suffix: str = "") -> str:
    """A LIKE pattern: ``value`` matched literally, ``prefix``/``suffix`` wildcards added as is.

    ``quote_like(name, suffix="%")`` matches names starting with ``name``, whatever it contains.
    """
    if set(prefix + suffix) - {"%", "_"}:
        raise ValueError("LIKE prefix and suffix may only contain the wildcards % and _")
    return f"'{prefix}{escape(value, like=True)}{suffix}'"


def quote_list(values: Iterable[object]) -> str:
    """A parenthesised list for ``IN``: ``('a', 'b')``. Empty lists are not valid SOQL."""
    items = [quote(value) for value in values]
    if not items:
        raise ValueError("SOQL IN needs at least one value")
    return "(" + ", ".join(items) + ")"
