"""Slices and filters of the operator tools: pure parsing and range resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.ops.slices import (
    EventFilter,
    OffsetBound,
    SliceError,
    SliceSpec,
    parse_position,
    parse_time,
    resolve_ranges,
)
from pipeline.events import Event

NOW_MS = 1_800_000_000_000


def test_a_position_is_partition_colon_offset() -> None:
    """``3:120`` names partition 3, offset 120; anything else is refused with an example."""
    assert parse_position(" 3:120 ") == (3, 120)
    for bad in ("3", "3:", ":1", "a:1", "-1:4", "1:2:3"):
        with pytest.raises(SliceError, match="PARTITION:OFFSET"):
            parse_position(bad)


def test_an_offset_bound_has_a_default_and_per_partition_values() -> None:
    """A plain N applies to every partition; P:N overrides it for partition P."""
    bound = OffsetBound.parse(["100", "2:7"])
    assert bound is not None
    assert (bound.for_partition(0), bound.for_partition(2)) == (100, 7)
    assert OffsetBound.parse([]) is None
    with pytest.raises(SliceError, match="two offsets for partition 1"):
        OffsetBound.parse(["1:5", "1:6"])
    with pytest.raises(SliceError, match="every partition"):
        OffsetBound.parse(["5", "6"])


def test_times_are_iso_8601_in_utc_or_a_duration_ago() -> None:
    """Z, offsets and naive times (UTC) are read; ``2h`` means two hours before now."""
    expected = int(datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp() * 1000)
    assert parse_time("2026-11-24T10:00:00Z", now_ms=NOW_MS) == expected
    assert parse_time("2026-11-24T11:00:00+01:00", now_ms=NOW_MS) == expected
    assert parse_time("2026-11-24T10:00", now_ms=NOW_MS) == expected
    assert parse_time("2h", now_ms=NOW_MS) == NOW_MS - 7_200_000
    with pytest.raises(SliceError, match="not a time"):
        parse_time("yesterday", now_ms=NOW_MS)


def test_contradictory_bounds_are_refused() -> None:
    """Offsets and times for one bound, or an empty time window, are errors."""
    with pytest.raises(SliceError, match="--since"):
        SliceSpec(from_offsets=OffsetBound(5), since_ms=1)
    with pytest.raises(SliceError, match="--until"):
        SliceSpec(to_offsets=OffsetBound(5), until_ms=1)
    with pytest.raises(SliceError, match="earlier"):
        SliceSpec(since_ms=10, until_ms=10)


def test_the_selected_partitions_come_from_the_options_or_the_bounds() -> None:
    """--partition wins; else partitions named in P:N bounds; else all; unknown ones fail."""
    assert SliceSpec().selected([2, 0, 1]) == (0, 1, 2)
    assert SliceSpec(partitions=(1,)).selected([0, 1, 2]) == (1,)
    named = SliceSpec(from_offsets=OffsetBound(per_partition={2: 5}))
    assert named.selected([0, 1, 2]) == (2,)
    with pytest.raises(SliceError, match="no partition 7"):
        SliceSpec(partitions=(7,)).selected([0, 1])


def test_offset_bounds_are_inclusive_and_clamped_to_the_log() -> None:
    """--to-offset N includes N; a start before the log's first offset starts at it."""
    spec = SliceSpec(from_offsets=OffsetBound(2), to_offsets=OffsetBound(per_partition={0: 4}))
    ranges = resolve_ranges(spec, [0, 1], first={0: 0, 1: 3}, end={0: 10, 1: 6})
    assert ranges == {0: (2, 5), 1: (3, 6)}


def test_time_bounds_use_the_looked_up_offsets() -> None:
    """--since starts at the first offset at or after it; None (nothing that late) is the end."""
    spec = SliceSpec(since_ms=100, until_ms=200)
    ranges = resolve_ranges(
        spec, [0, 1], first={0: 0, 1: 0}, end={0: 10, 1: 10},
        since={0: 4, 1: None}, until={0: 8, 1: None},
    )  # fmt: skip
    assert ranges == {0: (4, 8), 1: (10, 10)}


def test_a_start_after_the_end_is_an_error_only_when_both_were_given() -> None:
    """from > to is a mistake; a start past a short partition's end is just an empty range."""
    with pytest.raises(SliceError, match="after --to-offset"):
        resolve_ranges(
            SliceSpec(from_offsets=OffsetBound(9), to_offsets=OffsetBound(3)), [0], {0: 0}, {0: 20}
        )
    assert resolve_ranges(SliceSpec(from_offsets=OffsetBound(50)), [0], {0: 0}, {0: 20}) == {
        0: (20, 20)
    }


@given(
    first=st.integers(0, 1000), length=st.integers(0, 1000),
    start=st.none() | st.integers(0, 3000), stop=st.none() | st.integers(0, 3000),
)  # fmt: skip
def test_resolved_ranges_stay_within_the_log(
    first: int, length: int, start: int | None, stop: int | None
) -> None:
    """Whatever the bounds, a resolved range lies within [first, end] and is never negative."""
    if start is not None and stop is not None and start > stop:
        start, stop = stop, start
    spec = SliceSpec(
        from_offsets=None if start is None else OffsetBound(start),
        to_offsets=None if stop is None else OffsetBound(stop),
    )
    end = first + length
    ((low, high),) = resolve_ranges(spec, [0], {0: first}, {0: end}).values()
    assert first <= low <= high <= end


def _event(ticket: str, kind: str) -> Event:
    return Event(id="e1", type=kind, ticket_id=ticket)


def test_filters_select_tickets_and_event_type_patterns() -> None:
    """Tickets and types combine with "and"; types are shell patterns as in flow triggers."""
    only = EventFilter(frozenset({"T1"}), ("ticket.*",))
    assert only.matches(b"T1", _event("T1", "ticket.created"))
    assert not only.matches(b"T1", _event("T1", "interaction.call"))
    assert not only.matches(b"T2", _event("T2", "ticket.created"))
    assert EventFilter().matches(None, None)


def test_an_undecodable_record_matches_tickets_by_key_but_no_type() -> None:
    """Without an event the key stands for the ticket; a type filter cannot match."""
    assert EventFilter(frozenset({"T1"})).matches(b"T1", None)
    assert not EventFilter(types=("ticket.*",)).matches(b"T1", None)
