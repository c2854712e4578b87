"""Conditional request headers on sObject Rows, as the REST API guide's "Conditional Request
Headers" page documents them. Pure: a request's headers and a record in, a verdict out.

- Weak validation, every object: ``If-Modified-Since`` (GET: ``304 Not Modified`` unless the
  record changed after the date) and ``If-Unmodified-Since`` (``412 Precondition Failed`` if it
  did), compared with the record's ``LastModifiedDate``. Both sides have one-second resolution:
  a record changed twice within one second passes a check made with the first change's date.
- Strong validation, Account rows only: an ``ETag`` on every response, ``If-Match`` (412 unless
  one of the tags matches, or ``*``) and ``If-None-Match`` (304 on GET, 412 on PATCH, when one
  matches). Other objects ignore both headers, as they send no ETag.
- An invalid ``If-Match``, ``If-None-Match`` or ``If-Unmodified-Since`` value on a PATCH is
  ``400``. On a GET an invalid date is ignored, as HTTP says.
- As in HTTP, ``If-Match`` takes precedence over ``If-Unmodified-Since`` and ``If-None-Match``
  over ``If-Modified-Since``. DELETE ignores them all (the guide: "DELETE requests aren't
  supported").
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import orjson

from .errors import ApiError

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412
ETAG_OBJECTS = frozenset({"Account"})

# A list of entity tags: "x", W/"y" (If-None-Match takes weak ones too).
_TAG_LIST = re.compile(r'\s*(?:W/)?"[^"]*"\s*(?:,\s*(?:W/)?"[^"]*"\s*)*')
_TAG = re.compile(r'(W/)?"([^"]*)"')

Header = Callable[[str], str | None]


def http_date(moment: float) -> str:
    """``Tue, 10 Aug 2015 00:00:00 GMT`` for epoch seconds (the ``Date`` header's format)."""
    return format_datetime(dt.datetime.fromtimestamp(moment, dt.UTC), usegmt=True)


def etag(record: Mapping[str, Any]) -> str:
    """A quoted hash of the record's content, shaped like the guide's example."""
    canonical = orjson.dumps(dict(record), option=orjson.OPT_SORT_KEYS, default=str)
    digest = base64.b64encode(hashlib.sha1(canonical, usedforsecurity=False).digest()).decode()
    return f'"{digest}-gzip"'


def _date(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise ValueError(value) from None
    if parsed.tzinfo is None:  # "-0000" means UTC to the parser but leaves it naive
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def modified_at(record: Mapping[str, Any]) -> dt.datetime:
    """The record's LastModifiedDate as a datetime."""
    raw = str(record["LastModifiedDate"])
    return dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%f%z").replace(microsecond=0)


def _tags(value: str) -> list[str] | None:
    """The entity tags of an If-Match / If-None-Match value (None for ``*``)."""
    if value.strip() == "*":
        return None
    if not _TAG_LIST.fullmatch(value):
        raise ValueError(value)
    return [match.group(2) for match in _TAG.finditer(value)]


def _bad_header(name: str, value: str) -> ApiError:
    # GUESS: the guide names the status (400), not the body; BAD_REQUEST is the generic code.
    return ApiError(400, "BAD_REQUEST", f"Invalid value for the {name} header: {value}")


def _failed(record: Mapping[str, Any], why: str) -> ApiError:
    # GUESS: the guide names the status (412), not the body.
    return ApiError(
        PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
        f"The precondition failed: the record {record['Id']} {why}",
    )


def evaluate(method: str, header: Header, record: Mapping[str, Any], tag: str | None) -> int | None:
    """304 when a GET may answer "not modified", None to go on; raises 412 or 400 as ApiError.

    ``tag`` is the record's ETag (Account rows only, else None). The order is HTTP's (RFC 9110
    §13.2.2): If-Match, else If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
    """
    method = method.upper()
    if method not in ("GET", "HEAD", "PATCH"):
        return None
    strict = method == "PATCH"  # an invalid value is a 400 on PATCH, ignored on GET
    if_match = _tags_of(header, "If-Match", strict) if tag is not None else _ABSENT
    if if_match is not _ABSENT:
        if if_match is not None and tag is not None and tag.strip('"') not in if_match:
            raise _failed(record, "does not match any ETag in If-Match")
    else:
        since = _date_of(header, "If-Unmodified-Since", strict)
        if since is not None and modified_at(record) > since:
            raise _failed(record, f"was modified at {record['LastModifiedDate']}")
    if_none = _tags_of(header, "If-None-Match", strict) if tag is not None else _ABSENT
    if if_none is not _ABSENT:
        if if_none is None or (tag is not None and tag.strip('"') in if_none):
            if method == "PATCH":
                raise _failed(record, "matches an ETag in If-None-Match")
            return NOT_MODIFIED
        return None
    since = _date_of(header, "If-Modified-Since", strict=False) if not strict else None
    if since is not None and not modified_at(record) > since:
        return NOT_MODIFIED
    return None


_ABSENT: list[str] = []  # the header is absent (or invalid and ignored)


def _tags_of(header: Header, name: str, strict: bool) -> list[str] | None:
    """The header's entity tags; None for ``*``; _ABSENT when absent or ignorably invalid."""
    raw = header(name)
    if raw is None:
        return _ABSENT
    try:
        return _tags(raw)
    except ValueError:
        if strict:
            raise _bad_header(name, raw) from None
        return _ABSENT


def _date_of(header: Header, name: str, strict: bool) -> dt.datetime | None:
    raw = header(name)
    try:
        return _date(raw)
    except ValueError:
        if strict:
            raise _bad_header(name, str(raw)) from None
        return None
