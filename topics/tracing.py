"""W3C Trace Context in Kafka headers: ``traceparent`` (and ``tracestate``) carried end to end.

An input record that arrives with a valid ``traceparent`` keeps its trace id through every
step output, retry, dead letter and replay; one without (or with an invalid one, which the W3C
recommendation says to discard) starts a new trace. ``tracestate`` is carried only beside a
valid ``traceparent``. Randomness is injected so tests are deterministic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from topics.errors import HeaderError

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

RandomBytes = Callable[[int], bytes]
_HEX = re.compile(r"^[0-9a-f]+$")


def _hex(value: str, size: int) -> bool:
    return len(value) == size and bool(_HEX.match(value)) and value != "0" * size


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits, not all zero
    parent_id: str  # 16 lower-case hex digits, not all zero: the span that produced the record
    flags: int = 1  # bit 0: sampled

    def __post_init__(self) -> None:
        if not _hex(self.trace_id, 32) or not _hex(self.parent_id, 16):
            raise ValueError(f"invalid trace ids {self.trace_id!r}/{self.parent_id!r}")
        if not 0 <= self.flags <= 0xFF:
            raise ValueError(f"trace flags out of range: {self.flags}")

    @classmethod
    def parse(cls, value: str) -> TraceContext:
        """Parse a ``traceparent`` value; versions other than 00 are read as 00 (W3C §4.3)."""
        parts = value.strip().split("-")
        version = parts[0] if parts else ""
        valid = (
            len(parts) >= 4
            and len(version) == 2
            and bool(_HEX.match(version))
            and version != "ff"
            and (version != "00" or len(parts) == 4)
            and _hex(parts[1], 32)
            and _hex(parts[2], 16)
            and len(parts[3]) == 2
            and bool(_HEX.match(parts[3]))
        )
        if not valid:
            raise HeaderError(TRACEPARENT, f"not a W3C traceparent: {value[:80]!r}")
        return cls(parts[1], parts[2], int(parts[3], 16))

    @classmethod
    def new(cls, random_bytes: RandomBytes = os.urandom) -> TraceContext:
        """A fresh, sampled trace."""
        return cls(_nonzero_hex(random_bytes, 16), _nonzero_hex(random_bytes, 8))

    def child(self, random_bytes: RandomBytes = os.urandom) -> TraceContext:
        """The same trace with a new parent span: for records this service produces."""
        return TraceContext(self.trace_id, _nonzero_hex(random_bytes, 8), self.flags)

    @property
    def value(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags:02x}"


def _nonzero_hex(random_bytes: RandomBytes, size: int) -> str:
    while True:
        value = random_bytes(size).hex()
        if _hex(value, 2 * size):
            return value


def _last(headers: Iterable[tuple[str, bytes]], name: str) -> bytes | None:
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def read_trace(headers: Iterable[tuple[str, bytes]]) -> TraceContext | None:
    """The record's trace context, or None when absent or invalid."""
    raw = _last(headers, TRACEPARENT)
    if raw is None:
        return None
    try:
        return TraceContext.parse(raw.decode("ascii"))
    except (UnicodeDecodeError, HeaderError):
        return None


def ensure_trace(
    headers: Iterable[tuple[str, bytes]], random_bytes: RandomBytes = os.urandom
) -> tuple[TraceContext, list[tuple[str, bytes]]]:
    """The incoming trace (or a new one) and the trace headers to put on outgoing records."""
    incoming = list(headers)
    context = read_trace(incoming)
    if context is None:
        return (fresh := TraceContext.new(random_bytes)), trace_headers(fresh)
    return context, trace_headers(context, _last(incoming, TRACESTATE))


def trace_headers(
    context: TraceContext, tracestate: bytes | None = None
) -> list[tuple[str, bytes]]:
    headers = [(TRACEPARENT, context.value.encode("ascii"))]
    if tracestate:
        headers.append((TRACESTATE, tracestate))
    return headers
