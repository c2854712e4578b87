"""The history store: what a run, its steps and dead letters look like; filters, pages, expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.history.indexer import indexed
from agents.history.rows import Source
from agents.history.store import LetterQuery, QueryError, RunQuery, Store
from pipeline.result import RunStatus, StepStatus
from tests.history.records import T0_MS, dead_letter, run_result, step_output
from topics.catalogue import TopicRole

DAY_MS = 86_400_000
_ROLES = {
    "actionflows.run-results": TopicRole.RUN_RESULTS,
    "actionflows.step-outputs": TopicRole.STEP_OUTPUTS,
    "actionflows.dead-letters": TopicRole.DEAD_LETTERS,
}


@pytest.fixture
def store() -> Iterator[Store]:
    db = Store(":memory:")
    yield db
    db.close()


def index(store: Store, *sources: Source, retention_ms: int | None = 14 * DAY_MS) -> None:
    store.apply([indexed(s, _ROLES[s.topic], retention_ms) for s in sources])


def test_a_run_is_its_latest_result_and_keeps_when_it_first_ended(store: Store) -> None:
    """retry_later then succeeded: one run, succeeded, first_at from the first result."""
    index(
        store,
        run_result(0, status=RunStatus.RETRY_LATER, at_ms=T0_MS, failed_step="create_lead"),
        run_result(1, status=RunStatus.SUCCEEDED, at_ms=T0_MS + 30_000),
    )
    (run,) = store.runs(RunQuery()).items
    assert run["status"] == "succeeded"
    assert run["failed_step"] is None
    assert (run["first_at"], run["at"]) == ("2027-01-15T08:00:00.000Z", "2027-01-15T08:00:30.000Z")
    assert run["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert run["published"] == {"lead_id": "00Q000000000001AAA", "api_key": "***"}


def test_steps_keep_what_they_did_and_stay_masked(store: Store) -> None:
    """A later 'reused' output does not hide 'succeeded'; secrets and PII stay masked."""
    index(
        store,
        step_output(0, "find_lead"),
        step_output(1, "create_lead", StepStatus.FAILED),
        step_output(2, "create_lead", StepStatus.SUCCEEDED),
        step_output(3, "find_lead", StepStatus.REUSED),
    )
    steps = store.steps(["run1-a"])["run1-a"]
    assert [(s["step"], s["status"]) for s in steps] == [
        ("find_lead", "succeeded"),
        ("create_lead", "succeeded"),
    ]
    assert steps[0]["inputs"] == {"name": "Ada", "email": "***", "password": "***"}
    assert steps[0]["outputs"] == {"id": "00Q000000000001AAA"}


def test_runs_filter_by_ticket_event_flow_status_and_time(store: Store) -> None:
    index(
        store,
        run_result(0, run_id="r1", ticket="35436", event="e1", at_ms=T0_MS),
        run_result(1, run_id="r2", ticket="35436", event="e2", flow="lookup", at_ms=T0_MS + 1),
        run_result(2, run_id="r3", ticket="99", event="e3", status=RunStatus.DEAD_LETTER,
                   at_ms=T0_MS + 2),
    )  # fmt: skip

    def ids(**filters: object) -> list[str]:
        return [r["run_id"] for r in store.runs(RunQuery(**filters)).items]  # type: ignore[arg-type]

    assert ids() == ["r3", "r2", "r1"]
    assert ids(ticket="35436") == ["r2", "r1"]
    assert ids(event="e2") == ["r2"]
    assert ids(flow="create-lead") == ["r3", "r1"]
    assert ids(status="dead_letter") == ["r3"]
    assert ids(since_ms=T0_MS + 1) == ["r3", "r2"]
    assert ids(until_ms=T0_MS + 1) == ["r1"]
    assert ids(ticket="nobody") == []


def test_pages_cover_every_run_once_even_with_equal_times(store: Store) -> None:
    index(store, *(run_result(i, run_id=f"r{i:02d}", at_ms=T0_MS + i // 3) for i in range(20)))
    seen, cursor, pages = [], None, 0
    while True:
        page = store.runs(RunQuery(limit=7, cursor=cursor))
        seen += [r["run_id"] for r in page.items]
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert pages == 3
    assert sorted(seen) == [f"r{i:02d}" for i in range(20)]
    assert len(seen) == len(set(seen))


def test_a_bad_cursor_or_limit_is_a_clear_error(store: Store) -> None:
    with pytest.raises(QueryError, match="cursor"):
        store.runs(RunQuery(cursor="not-a-cursor"))
    with pytest.raises(QueryError, match="limit"):
        store.runs(RunQuery(limit=0))


def test_dead_letters_read_their_context_headers(store: Store) -> None:
    bad = Source("actionflows.dead-letters", 0, 5, T0_MS + 5, b"77", b"x", ())
    index(store, dead_letter(4, reason="malformed_json"), bad)
    letters = store.dead_letters(LetterQuery()).items
    assert [(x["id"], x["reason"], x["problem"] is None) for x in letters] == [
        ("0:5", None, False),
        ("0:4", "malformed_json", True),
    ]
    assert letters[1]["origin"] == {"topic": "actionflows.tickets", "partition": 0, "offset": 41}
    assert letters[1]["ticket_id"] == "35436"
    assert [x["id"] for x in store.dead_letters(LetterQuery(reason="malformed_json")).items] == [
        "0:4"
    ]


def test_rows_expire_with_their_records_and_positions_move_with_rows(store: Store) -> None:
    """expires_at = record time + retention; a topic kept forever never expires."""
    index(store, run_result(0, run_id="old", at_ms=T0_MS), retention_ms=DAY_MS)
    index(store, run_result(1, run_id="new", at_ms=T0_MS + DAY_MS), retention_ms=DAY_MS)
    index(store, dead_letter(0, at_ms=T0_MS), retention_ms=None)
    assert store.positions() == {
        ("actionflows.run-results", 0): 2,
        ("actionflows.dead-letters", 0): 1,
    }
    assert store.expire(T0_MS + DAY_MS - 1) == 0
    assert store.expire(T0_MS + DAY_MS) == 1
    assert [r["run_id"] for r in store.runs(RunQuery()).items] == ["new"]
    assert store.counts()["dead_letters"] == 1
    store.clear()
    assert store.positions() == {}
    assert store.counts() == {"runs": 0, "steps": 0, "dead_letters": 0}


def test_an_unreadable_record_is_skipped_but_passed(store: Store) -> None:
    """A value that is not a run result leaves no row, and the position moves past it."""
    junk = Source("actionflows.run-results", 0, 9, T0_MS, b"k", b'{"schema": "other/1"}', ())
    index(store, junk)
    assert store.counts()["runs"] == 0
    assert store.positions() == {("actionflows.run-results", 0): 10}
