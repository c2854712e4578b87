"""W3C traceparent: parsed, generated when absent, carried through."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from topics.errors import HeaderError
from topics.tracing import (
    TRACEPARENT,
    TRACESTATE,
    RandomBytes,
    TraceContext,
    ensure_trace,
    read_trace,
)

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def fake_random(seed: int = 1) -> RandomBytes:
    """Deterministic, never-zero bytes."""
    counter = itertools.count(seed)
    return lambda size: bytes((next(counter) % 255) + 1 for _ in range(size))


def test_parse_reads_the_w3c_example() -> None:
    """The spec's example parses into its parts and prints back unchanged."""
    context = TraceContext.parse(VALID)
    assert (context.trace_id, context.parent_id, context.flags) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        1,
    )
    assert context.value == VALID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        VALID + "-extra",
    ],
)
def test_invalid_traceparents_are_refused(value: str) -> None:
    """Zero ids, version ff, upper case and extra fields on version 00 are invalid."""
    with pytest.raises(HeaderError, match="traceparent"):
        TraceContext.parse(value)


def test_future_versions_are_read_as_00() -> None:
    """A higher version with extra fields still yields its ids."""
    value = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever"
    assert TraceContext.parse(value).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_ensure_trace_carries_an_incoming_trace_and_state() -> None:
    """A valid traceparent and its tracestate are passed on unchanged."""
    incoming = [(TRACEPARENT, VALID.encode()), (TRACESTATE, b"vendor=1")]
    context, headers = ensure_trace(incoming, fake_random())
    assert context.value == VALID
    assert headers == incoming


def test_ensure_trace_starts_a_trace_when_absent_or_invalid() -> None:
    """Missing or invalid traceparent → a new sampled trace; tracestate is dropped."""
    context, headers = ensure_trace(
        [(TRACEPARENT, b"garbage"), (TRACESTATE, b"v=1")], fake_random()
    )
    assert headers == [(TRACEPARENT, context.value.encode())]
    assert context.flags == 1
    assert read_trace(headers) == context


def test_child_keeps_the_trace_and_changes_the_span() -> None:
    """child() keeps trace id and flags, with a new parent id."""
    parent = TraceContext.parse(VALID)
    child = parent.child(fake_random())
    assert (child.trace_id, child.flags) == (parent.trace_id, parent.flags)
    assert child.parent_id != parent.parent_id


def test_generation_skips_all_zero_ids() -> None:
    """A random source that first returns zeros still yields valid ids."""
    calls = iter([b"\0" * 16, b"\1" * 16, b"\0" * 8, b"\2" * 8])
    context = TraceContext.new(lambda size: next(calls))
    assert context.trace_id == "01" * 16
    assert context.parent_id == "02" * 8


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8), st.integers(0, 255))
def test_traceparent_round_trips(trace: bytes, span: bytes, flags: int) -> None:
    """parse(value) inverts value for every valid context."""
    assume(trace != bytes(16) and span != bytes(8))
    context = TraceContext(trace.hex(), span.hex(), flags)
    assert TraceContext.parse(context.value) == context
