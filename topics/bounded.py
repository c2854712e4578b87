"""Records that always fit: the bounded form of a record the broker would refuse for its size.

Kafka refuses a record larger than its topic's ``max.message.bytes`` or the producer's
``max_request_size``, and will refuse it on every try: retrying cannot help, and an outcome that
is never published is an input offset that can never be committed. So an outcome too large for
its topic is replaced by a bounded form that fits, and that form says what was cut:

- **JSON records** (step outputs, run results; :func:`bound_document`): the metadata fields are
  kept (flow, run and event ids, ticket, step, status …); the values that make the record large
  are replaced, one at a time, by a marker ``{"truncated": true, "original_bytes": N}`` (the
  serialised size of what was cut), and the record gets ``"truncated": true``. Each cut takes
  the smallest value whose removal is enough, or else the largest, so as little as possible is
  lost.
- **Opaque payloads** (dead letters, retry records; :func:`bound_payload`): the original bytes
  when they fit; otherwise the first bytes that fit, and three headers:
  ``actionflows.errors.truncated: true``, ``actionflows.errors.original.bytes`` and
  ``actionflows.errors.original.sha256`` (of the whole value). The origin topic, partition and
  offset are in the dead letter's context headers already, so an operator can fetch the
  original from the input topic while it is retained.

When a record does not fit, its key is cut to :data:`MAX_BOUNDED_KEY` bytes and headers that are
not the service's own are dropped, largest first, until they take at most a quarter of the
limit. Every function here is pure and total: for any input and any ``limit`` of at least
:data:`MIN_LIMIT`, the result's :func:`record_size` is at most ``limit``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

Header = tuple[str, bytes]
Bounded = tuple[bytes | None, bytes, list[Header]]

#: A record batch's header (61 bytes) and one record's framing at most (21 bytes), as the
#: producer counts them (aiokafka ``DefaultRecordBatchBuilder.estimate_size_in_bytes``).
RECORD_OVERHEAD = 61 + 21
#: The smallest limit the bounded forms are built for (Kafka's own minimum is far above).
MIN_LIMIT = 1024
#: A key longer than this is cut when its record has to be bounded.
MAX_BOUNDED_KEY = 256

TRUNCATED = "actionflows.errors.truncated"
ORIGINAL_BYTES = "actionflows.errors.original.bytes"
ORIGINAL_SHA256 = "actionflows.errors.original.sha256"
_OWN_PREFIX = "actionflows."
_MAX_DEPTH = 8  # cuts look this deep into a document
_MAX_FANOUT = 64  # a container with more children is cut whole, not child by child


def record_size(key: bytes | None, value: bytes | None, headers: Iterable[Header]) -> int:
    """An upper bound of the bytes a record takes in a single-record batch (varints counted at
    their widest), never below what the producer's own size check counts."""
    size = RECORD_OVERHEAD + 5 + (5 + len(key) if key is not None else 1)
    size += 5 + len(value) if value is not None else 1
    for name, content in headers:
        size += 10 + len(name.encode("utf-8")) + len(content)
    return size


def bound_payload(
    key: bytes | None, value: bytes, headers: Iterable[Header], limit: int
) -> Bounded:
    """The record itself if it fits ``limit``; else its first value bytes that fit, with the
    truncation headers (original size and sha256 of the value)."""
    headers = list(headers)
    if record_size(key, value, headers) <= limit:
        return key, value, headers
    limit = max(limit, MIN_LIMIT)
    marks = [
        (TRUNCATED, b"true"),
        (ORIGINAL_BYTES, str(len(value)).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]
    key = _bounded_key(key)
    kept = marks + _bounded_headers(
        [(k, v) for k, v in headers if k not in {TRUNCATED, ORIGINAL_BYTES, ORIGINAL_SHA256}],
        limit // 4 - sum(_header_size(mark) for mark in marks),
    )
    room = limit - record_size(key, b"", kept)
    return key, value[: max(room, 0)], kept


def bound_document(
    key: bytes | None,
    value: bytes,
    headers: Iterable[Header],
    limit: int,
    *,
    keep: frozenset[str],
) -> Bounded:
    """The record itself if it fits ``limit``; else the JSON object ``value`` with its largest
    values (outside the top-level ``keep`` fields, unless nothing else is left) replaced by
    truncation markers. A value that is not a JSON object is bounded as a payload."""
    headers = list(headers)
    if record_size(key, value, headers) <= limit:
        return key, value, headers
    limit = max(limit, MIN_LIMIT)
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        return bound_payload(key, value, headers, limit)
    key = _bounded_key(key)
    headers = _bounded_headers(headers, limit // 4)
    budget = limit - record_size(key, b"", headers)
    return key, _shrink(document, budget, keep, value), headers


def _bounded_key(key: bytes | None) -> bytes | None:
    return key if key is None or len(key) <= MAX_BOUNDED_KEY else key[:MAX_BOUNDED_KEY]


def _bounded_headers(headers: list[Header], budget: int) -> list[Header]:
    """The service's own headers first (in order), then the others; dropped from the end, the
    largest of the others first, until they take at most ``budget`` bytes."""
    own = [h for h in headers if h[0].startswith(_OWN_PREFIX)]
    others = sorted((h for h in headers if not h[0].startswith(_OWN_PREFIX)), key=_header_size)
    kept: list[Header] = []
    used = 0
    for header in own + others:
        size = _header_size(header)
        if used + size <= budget:
            kept.append(header)
            used += size
    return kept


def _header_size(header: Header) -> int:
    return record_size(None, None, [header]) - record_size(None, None, [])


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _marker(size: int) -> dict[str, Any]:
    return {"truncated": True, "original_bytes": size}


def _shrink(document: dict[str, Any], budget: int, keep: frozenset[str], raw: bytes) -> bytes:
    """Cut values out of ``document`` until it serialises to at most ``budget`` bytes."""
    document = {**document, "truncated": True}
    encoded = _dumps(document)
    for protect in (keep | {"schema", "truncated"}, frozenset({"schema", "truncated"})):
        while len(encoded) > budget:
            excess = len(encoded) - budget
            nodes = [n for n in _nodes(document, protect) if n[1] > len(_dumps(_marker(n[1])))]
            if not nodes:
                break
            enough = [n for n in nodes if n[1] - len(_dumps(_marker(n[1]))) >= excess]
            path, size = (
                min(enough, key=lambda n: n[1]) if enough else max(nodes, key=lambda n: n[1])
            )
            _replace(document, path, _marker(size))
            encoded = _dumps(document)
        if len(encoded) <= budget:
            return encoded
    # Too many fields even as markers: what is left is the fact and a fingerprint.
    schema = document.get("schema")
    minimal = {
        "schema": schema if isinstance(schema, str) and len(schema) <= 64 else None,
        "truncated": True,
        "original_bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    return _dumps(minimal)


def _nodes(
    document: dict[str, Any], protect: frozenset[str]
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Every value that may be cut, with its path and serialised size: the top-level fields
    outside ``protect`` and, within bounds, what they contain. Markers are not cut again."""
    stack: list[tuple[tuple[Any, ...], Any]] = [
        ((name,), value) for name, value in document.items() if name not in protect
    ]
    while stack:
        path, value = stack.pop()
        if _is_marker(value):
            continue
        yield path, len(_dumps(value))
        if len(path) < _MAX_DEPTH:
            if isinstance(value, dict) and len(value) <= _MAX_FANOUT:
                stack.extend(((*path, k), v) for k, v in value.items())
            elif isinstance(value, list) and len(value) <= _MAX_FANOUT:
                stack.extend(((*path, i), v) for i, v in enumerate(value))


def _is_marker(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"truncated", "original_bytes"}


def _replace(document: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    container: Any = document
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = new
