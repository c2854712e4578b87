"""The commit tracker: whatever order records finish in, only a finished prefix is released."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.commits import CommitTracker


@st.composite
def partitions_and_finish_order(
    draw: st.DrawFn,
) -> tuple[dict[str, list[int]], list[tuple[str, int]]]:
    """Offsets taken per partition (increasing, with gaps), and an order to finish them in
    (a random permutation of a random subset)."""
    taken: dict[str, list[int]] = {}
    for name in draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True)):
        start = draw(st.integers(0, 1_000))
        steps = draw(st.lists(st.integers(1, 3), min_size=1, max_size=40))
        offsets, offset = [], start
        for step in steps:
            offsets.append(offset)
            offset += step  # gaps: compacted records, transaction markers
        taken[name] = offsets
    everything = [(name, offset) for name, offsets in taken.items() for offset in offsets]
    finished = draw(st.permutations(everything))
    return taken, finished[: draw(st.integers(0, len(finished)))]


@given(partitions_and_finish_order())
def test_only_the_contiguous_finished_prefix_is_ever_released(case) -> None:  # type: ignore[no-untyped-def]
    """After every finish, what was released on each partition is exactly the longest prefix of
    its taken offsets that are all finished, in offset order: never an unfinished offset, never
    one after an unfinished offset."""
    taken, finish_order = case
    tracker: CommitTracker[str, int] = CommitTracker()
    entries = {
        (name, offset): tracker.register(name, offset, offset)
        for name, offsets in taken.items()
        for offset in offsets
    }
    released: dict[str, list[int]] = {name: [] for name in taken}
    finished: set[tuple[str, int]] = set()
    for name, offset in finish_order:
        finished.add((name, offset))
        released[name].extend(tracker.finish(entries[(name, offset)]))
        for partition, offsets in taken.items():
            prefix = []
            for candidate in offsets:
                if (partition, candidate) not in finished:
                    break
                prefix.append(candidate)
            assert released[partition] == prefix
            assert tracker.unreleased(partition) == len(offsets) - len(prefix)


def test_a_revoked_partition_releases_nothing_more() -> None:
    """Records finishing after their partition was revoked are never released, and the
    partition starts afresh when records are taken again (after the consumer re-seeks)."""
    tracker: CommitTracker[str, int] = CommitTracker()
    first, second = tracker.register("p", 5, 5), tracker.register("p", 6, 6)
    tracker.revoke(["p"])
    assert tracker.finish(first) == []
    assert tracker.finish(second) == []
    again = tracker.register("p", 5, 50)  # redelivered from the committed offset
    assert tracker.finish(again) == [50]


def test_an_offset_taken_twice_is_refused_even_after_it_was_released() -> None:
    """Offsets of a partition must increase while it is tracked: one at or below an offset
    taken before is a redelivery, whether that offset is still unfinished or long released."""
    tracker: CommitTracker[str, int] = CommitTracker()
    tracker.register("p", 3, 3)
    with pytest.raises(ValueError, match="registered after"):
        tracker.register("p", 3, 3)
    assert tracker.finish(tracker.register("p", 4, 4)) == []  # 3 is unfinished
    assert tracker.unreleased("p") == 2
    tracker.revoke(["p"])
    assert tracker.finish(tracker.register("p", 3, 3)) == [3]  # a new assignment starts afresh
    assert tracker.unreleased("p") == 0
    for offset in (2, 3):
        with pytest.raises(ValueError, match="registered after 3"):
            tracker.register("p", offset, offset)


def test_a_held_partition_releases_nothing_until_it_is_revoked() -> None:
    """After hold (a record may have been lost untaken), finishing releases nothing, even a
    record taken later; revocation ends the hold."""
    tracker: CommitTracker[str, int] = CommitTracker()
    first = tracker.register("p", 0, 0)
    tracker.hold(["p", "q"])
    later = tracker.register("q", 7, 7)
    assert tracker.finish(first) == []
    assert tracker.finish(later) == []
    tracker.revoke(["p", "q"])
    assert tracker.finish(tracker.register("q", 3, 3)) == [3]
