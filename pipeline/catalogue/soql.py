"""SOQL text the catalogue sends: quoted literals and the one query shape find uses.

Only values are ever interpolated, and only through :func:`soql_literal`; field and object
names come from the catalogue's own tables, never from a flow or an event.
"""

from __future__ import annotations

from collections.abc import Sequence

# Salesforce's "Quoted String Escape Sequences" (SOQL and SOSL reference): \n \r \t \f \" \' \\
# and \uXXXX. \b is documented both as "bell" and as "backspace", so we never emit it and send
# that character, like every other control character, as \uXXXX, which has one meaning.
_NAMED_ESCAPES: dict[str, str] = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\f": "\\f",
}


def _escape(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    if char < " " or char == "\x7f":
        return f"\\u{ord(char):04x}"
    return char


def soql_literal(value: str) -> str:
    """Return ``value`` as a single-quoted SOQL string literal that cannot end early.

    The quote and backslash are the reserved characters; newlines, tabs and other control
    characters are escaped too so that the query stays on one line in logs.
    """
    return "'" + "".join(_escape(char) for char in value) + "'"


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
    # Names come from the catalogue's tables; every value goes through soql_literal.
    query = f"SELECT {', '.join(fields)} FROM {sobject}"  # noqa: S608
    if where:
        query += " WHERE " + " AND ".join(f"{field} = {soql_literal(v)}" for field, v in where)
    return query + f" ORDER BY CreatedDate ASC, Id ASC LIMIT {limit}"
