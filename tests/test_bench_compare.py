"""bench.compare's arithmetic and its handling of revisions, without a broker: the pairs'
medians and ratios, a revision that names nothing, and a revision exported as a tree."""

from __future__ import annotations

import pytest

from bench.compare import Pair, Run, resolve, summarise, tree, verdict


def pair(base: tuple[float, float], head: tuple[float, float]) -> Pair:
    return Pair(Run(base[0], base[1], 0.04), Run(head[0], head[1], 0.04))


def test_the_summary_takes_the_median_of_each_pairs_own_ratio() -> None:
    """A slow spell that halves both sides of one pair moves the sides' medians, not the
    pair's ratio: the ratios are 1.25, 1.1 and 1.2, so their median is 1.2."""
    pairs = [
        pair((1000, 900), (1250, 720)),
        pair((500, 1800), (550, 1700)),
        pair((1000, 1000), (1200, 950)),
    ]
    summary = summarise(pairs)
    assert summary.rate_ratio == pytest.approx(1.2)
    assert summary.cpu_ratio == pytest.approx(1700 / 1800)  # of 0.8, 0.944… and 0.95
    assert summary.head_less_cpu == 3
    assert (summary.base_events_per_s, summary.head_events_per_s) == (1000, 1200)
    text = verdict(summary, "base", "head")
    assert "events/s x1.200, CPU per event x0.944" in text
    assert "head spent less CPU per event in 3 of 3 pair(s)" in text


def test_no_pairs_is_an_error_not_a_verdict() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        summarise([])


def test_a_revision_that_names_no_commit_says_so() -> None:
    with pytest.raises(SystemExit, match="'no-such-revision' is not a commit"):
        resolve("no-such-revision")


def test_a_revision_is_exported_as_a_tree_with_the_bench_in_it() -> None:
    with tree(resolve("HEAD")) as exported:
        assert (exported / "bench" / "e2e.py").is_file()
        assert (exported / "agents" / "engine.py").is_file()
    assert not exported.exists()  # removed with the block
