"""SOQL text the client sends: injection-safe literals and the query shapes find uses.

SOQL string literals are single-quoted; inside them Salesforce recognises ``\\'``, ``\\"``,
``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\f``, ``\\uXXXX`` and, in LIKE patterns only, ``\\%`` and
``\\_`` (SOQL and SOSL Reference, "Quoted String Escape Sequences"). ``\\b`` is documented both as
"bell" and as "backspace", so it is never emitted: that character, like every other control
character, goes out as ``\\uXXXX``, which has one meaning and keeps a query on one line in logs.

Only values are ever interpolated, and only through :func:`quote` (or :func:`quote_like`,
:func:`quote_list`); field and object names come from the catalogue's own tables, never from a
flow or an event. This is the one quoting the project has: the emulator parses, it never quotes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from pipeline.ports import FindQuery

_NAMED_ESCAPES: dict[str, str] = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}


def _escape(char: str, like: bool) -> str:
    named = _NAMED_ESCAPES.get(char) or (_LIKE_ESCAPES.get(char) if like else None)
    if named is not None:
        return named
    if char < " " or char == "\x7f":
        return f"\\u{ord(char):04x}"
    return char


def escape(value: str, *, like: bool = False) -> str:
    """The body of a quoted literal; with ``like``, ``%`` and ``_`` match only themselves."""
    return "".join(_escape(char, like) for char in value)


def quote(value: object) -> str:
    """A SOQL literal for a Python value: strings quoted, booleans, numbers, dates and null bare.

    A string literal cannot end early, whatever the string holds.
    """
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


def select_query(
    sobject: str,
    fields: Sequence[str],
    where: Sequence[tuple[str, str]],
    limit: int,
) -> str:
    """``SELECT … FROM sobject WHERE a = '…' AND … ORDER BY CreatedDate ASC, Id ASC LIMIT n``.

    Oldest first, with ``Id`` breaking ties between records created in the same second, so
    "the first match" names the same record on every run and replay.
    """
    condition = " AND ".join(f"{field} = {quote(v)}" for field, v in where)
    return _select(sobject, fields, condition, limit)


def select_in_query(
    sobject: str, fields: Sequence[str], field: str, values: Iterable[str], limit: int
) -> str:
    """``SELECT … FROM sobject WHERE field IN ('…', …) ORDER BY CreatedDate ASC, Id ASC LIMIT n``:
    the finds of several values as one query, in the same order as each one alone."""
    return _select(sobject, fields, f"{field} IN {quote_list(values)}", limit)


def find_query(query: FindQuery) -> str:
    """The SOQL of one :class:`~pipeline.ports.FindQuery`."""
    return select_query(query.sobject, query.fields, query.where, query.limit)


def _select(sobject: str, fields: Sequence[str], condition: str, limit: int) -> str:
    # Names come from the catalogue's tables; every value goes through quote.
    query = f"SELECT {', '.join(fields)} FROM {sobject}"  # noqa: S608
    if condition:
        query += f" WHERE {condition}"
    return query + f" ORDER BY CreatedDate ASC, Id ASC LIMIT {limit}"
