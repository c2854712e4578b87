"""The run history in SQLite: one file, a cache of the output topics, rebuilt from them at will.

Tables (docs/operations.md, "Run history", shows the same)::

    runs          one row per run (an event through one version of a flow): the latest run result
    steps         one row per (run, step): the latest step output, except that a ``reused``
                  output never replaces the one that says what the step did
    dead_letters  one row per dead letter (its partition and offset on the topic)
    positions     per topic partition, the next offset to index
    meta          the schema version

Every row has ``expires_at_ms``: the time its newest source record leaves its topic (record
time + the topic's ``retention.ms``; NULL for a topic kept forever). :meth:`Store.expire`
deletes what has expired, so the history never shows what the topics no longer hold, and a
rebuild gives the same rows. Rows and positions change in one transaction, so an index
interrupted at any point resumes without a gap or a double.

The store is synchronous and not thread-safe: :class:`agents.history.indexer.History` calls it
from one thread.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from agents.history.rows import LetterRow, RunRow, StepRow

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id        TEXT PRIMARY KEY,   -- the run key: event id x flow x flow version
    flow          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    event_id      TEXT NOT NULL,
    ticket_id     TEXT NOT NULL,
    status        TEXT NOT NULL,      -- of the latest run result
    failed_step   TEXT,
    attempts      INTEGER NOT NULL,
    duration_ms   REAL NOT NULL,
    at_ms         INTEGER NOT NULL,   -- the latest run result's time
    steps         TEXT NOT NULL,      -- JSON [{step, status, salesforce_id}]
    published     TEXT NOT NULL,      -- JSON, the flow's publish: values
    trace_id      TEXT,
    first_at_ms   INTEGER NOT NULL,   -- the first run result's time (a retry ends later)
    expires_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (at_ms DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_ticket ON runs (ticket_id, at_ms DESC);
CREATE INDEX IF NOT EXISTS runs_by_event ON runs (event_id);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, status, at_ms DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, at_ms DESC);
CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs (expires_at_ms);

CREATE TABLE IF NOT EXISTS steps (
    run_id          TEXT NOT NULL,
    step            TEXT NOT NULL,
    seq             INTEGER NOT NULL, -- offset of the first output: the order steps ran in
    flow            TEXT NOT NULL,
    flow_version    INTEGER NOT NULL,
    event_id        TEXT NOT NULL,
    ticket_id       TEXT NOT NULL,
    action          TEXT NOT NULL,
    object          TEXT,
    status          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    duration_ms     REAL NOT NULL,
    salesforce_id   TEXT,
    idempotency_key TEXT,
    inputs          TEXT NOT NULL,    -- JSON, masked
    outputs         TEXT NOT NULL,    -- JSON, masked
    error           TEXT,             -- JSON {class, message, errorCode, fields, retriable}
    at_ms           INTEGER NOT NULL,
    trace_id        TEXT,
    expires_at_ms   INTEGER,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX IF NOT EXISTS steps_by_expiry ON steps (expires_at_ms);

CREATE TABLE IF NOT EXISTS dead_letters (
    partition             INTEGER NOT NULL,
    offset                INTEGER NOT NULL,
    ticket_id             TEXT,       -- the record key
    event_id              TEXT,
    flow                  TEXT,
    flow_version          INTEGER,
    step                  TEXT,
    stage                 TEXT,
    reason                TEXT,
    exception_class       TEXT,
    exception_message     TEXT,
    salesforce_error_code TEXT,
    salesforce_fields     TEXT NOT NULL, -- JSON list
    attempts              INTEGER,
    origin_topic          TEXT,
    origin_partition      INTEGER,
    origin_offset         INTEGER,
    at_ms                 INTEGER NOT NULL, -- the dead letter's record time
    payload_bytes         INTEGER NOT NULL,
    trace_id              TEXT,
    problem               TEXT,
    expires_at_ms         INTEGER,
    PRIMARY KEY (partition, offset)
);
CREATE INDEX IF NOT EXISTS letters_by_time ON dead_letters (at_ms DESC, partition, offset);
CREATE INDEX IF NOT EXISTS letters_by_ticket ON dead_letters (ticket_id, at_ms DESC);
CREATE INDEX IF NOT EXISTS letters_by_expiry ON dead_letters (expires_at_ms);

CREATE TABLE IF NOT EXISTS positions (
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

TABLES = ("runs", "steps", "dead_letters")
MAX_LIMIT = 500


class QueryError(ValueError):
    """A filter or cursor the store cannot use; the message says which."""


def _columns(row_type: type) -> list[str]:
    return [f.name for f in fields(row_type)]


def _insert(table: str, columns: Sequence[str], conflict: str) -> str:
    names = ", ".join([*columns, "expires_at_ms"])
    marks = ", ".join("?" * (len(columns) + 1))
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"  # noqa: S608 - names are ours


_RUN_COLUMNS = _columns(RunRow)
_STEP_COLUMNS = _columns(StepRow)
_LETTER_COLUMNS = _columns(LetterRow)
_UPSERT_RUN = _insert(
    "runs",
    [*_RUN_COLUMNS, "first_at_ms"],
    "ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS if c != "run_id")
    + ", first_at_ms = min(runs.first_at_ms, excluded.first_at_ms)"
    + ", expires_at_ms = excluded.expires_at_ms",
)
_UPSERT_STEP = _insert(
    "steps",
    _STEP_COLUMNS,
    "ON CONFLICT (run_id, step) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _STEP_COLUMNS if c not in ("run_id", "step", "seq"))
    + ", expires_at_ms = excluded.expires_at_ms"
    # A redelivered run reuses its finished steps: keep what the step did, renew the expiry.
    + " WHERE excluded.status != 'reused' OR steps.status = 'reused'",
)
_RENEW_STEP = "UPDATE steps SET expires_at_ms = ? WHERE run_id = ? AND step = ?"
_UPSERT_LETTER = _insert("dead_letters", _LETTER_COLUMNS, "ON CONFLICT DO NOTHING")


@dataclass(frozen=True, slots=True)
class Indexed:
    """A row with its source position and expiry, ready for :meth:`Store.apply`."""

    topic: str
    partition: int
    offset: int
    row: RunRow | StepRow | LetterRow | None  # None: an unreadable record, skipped
    expires_at_ms: int | None


@dataclass(frozen=True, slots=True)
class RunQuery:
    ticket: str | None = None
    event: str | None = None
    flow: str | None = None
    status: str | None = None
    since_ms: int | None = None  # inclusive
    until_ms: int | None = None  # exclusive
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class LetterQuery:
    ticket: str | None = None
    event: str | None = None
    flow: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None  # the cursor of the next page; None on the last


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _uncursor(text: str, size: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise QueryError(f"not a cursor this API gave out: {text[:40]!r}") from None
    if not isinstance(values, list) or len(values) != size:
        raise QueryError(f"not a cursor this API gave out: {text[:40]!r}")
    return values


class Store:
    """The history tables in one SQLite database (a file, or ``":memory:"``)."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(found[0]) != SCHEMA_VERSION:
            # A cache of the topics: an old schema is dropped and rebuilt, never migrated.
            self.drop()
            self._db.executescript(SCHEMA)
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    # --- writing ------------------------------------------------------------------------------

    def apply(self, batch: Iterable[Indexed]) -> None:
        """Index a batch and advance the positions past it, in one transaction."""
        positions: dict[tuple[str, int], int] = {}
        with self._transaction() as db:
            for item in batch:
                positions[(item.topic, item.partition)] = item.offset + 1
                row = item.row
                if isinstance(row, RunRow):
                    db.execute(_UPSERT_RUN, (*astuple(row), row.at_ms, item.expires_at_ms))
                elif isinstance(row, StepRow):
                    db.execute(_UPSERT_STEP, (*astuple(row), item.expires_at_ms))
                    if row.status == "reused":
                        db.execute(_RENEW_STEP, (item.expires_at_ms, row.run_id, row.step))
                elif isinstance(row, LetterRow):
                    db.execute(_UPSERT_LETTER, (*astuple(row), item.expires_at_ms))
            db.executemany(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                [(topic, partition, offset) for (topic, partition), offset in positions.items()],
            )

    def positions(self) -> dict[tuple[str, int], int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM positions")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def expire(self, now_ms: int) -> int:
        """Delete the rows whose records have left their topics; return how many."""
        deleted = 0
        with self._transaction() as db:
            for table in TABLES:
                cursor = db.execute(
                    f"DELETE FROM {table} WHERE expires_at_ms <= ?",  # noqa: S608 - our names
                    (now_ms,),
                )
                deleted += cursor.rowcount
        return deleted

    def clear(self) -> None:
        """Forget every row and position (a rebuild reads the topics again from the start)."""
        with self._transaction() as db:
            for table in (*TABLES, "positions"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - our names

    def drop(self) -> None:
        for table in (*TABLES, "positions", "meta"):
            self._db.execute(f"DROP TABLE IF EXISTS {table}")

    def counts(self) -> dict[str, int]:
        return {
            table: self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in TABLES
        }

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- reading ------------------------------------------------------------------------------

    def runs(self, query: RunQuery) -> Page:
        """Runs, newest first, by the filters given; ``query.cursor`` continues a listing."""
        where, args = _filters({
            "ticket_id": query.ticket, "event_id": query.event,
            "flow": query.flow, "status": query.status,
        }, query.since_ms, query.until_ms)  # fmt: skip
        if query.cursor:
            at_ms, run_id = _uncursor(query.cursor, 2)
            where.append("(at_ms < ? OR (at_ms = ? AND run_id < ?))")
            args += [at_ms, at_ms, run_id]
        limit = _limit(query.limit)
        rows = self._db.execute(
            f"SELECT * FROM runs {_where(where)} ORDER BY at_ms DESC, run_id DESC LIMIT ?",  # noqa: S608
            [*args, limit + 1],
        ).fetchall()
        items = [run_dict(row) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        return Page(items, _cursor([last["at_ms"], last["run_id"]]) if last else None)

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return run_dict(row) if row else None

    def steps(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The step outputs of each run, in the order the steps ran."""
        found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        marks = ", ".join("?" * len(run_ids))
        rows = self._db.execute(
            f"SELECT * FROM steps WHERE run_id IN ({marks}) ORDER BY run_id, seq",  # noqa: S608
            list(run_ids),
        )
        for row in rows:
            found[row["run_id"]].append(step_dict(row))
        return found

    def dead_letters(self, query: LetterQuery) -> Page:
        where, args = _filters({
            "ticket_id": query.ticket, "event_id": query.event,
            "flow": query.flow, "reason": query.reason,
        }, query.since_ms, query.until_ms)  # fmt: skip
        if query.cursor:
            at_ms, partition, offset = _uncursor(query.cursor, 3)
            where.append(
                "(at_ms < ? OR (at_ms = ? AND (partition > ? OR (partition = ? AND offset > ?))))"
            )
            args += [at_ms, at_ms, partition, partition, offset]
        limit = _limit(query.limit)
        rows = self._db.execute(
            f"SELECT * FROM dead_letters {_where(where)} "  # noqa: S608 - built from our names
            "ORDER BY at_ms DESC, partition, offset LIMIT ?",
            [*args, limit + 1],
        ).fetchall()
        items = [letter_dict(row) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        cursor = _cursor([last["at_ms"], last["partition"], last["offset"]]) if last else None
        return Page(items, cursor)


def _filters(
    equal: Mapping[str, str | None], since_ms: int | None, until_ms: int | None
) -> tuple[list[str], list[Any]]:
    where = [f"{column} = ?" for column, value in equal.items() if value is not None]
    args: list[Any] = [value for value in equal.values() if value is not None]
    if since_ms is not None:
        where.append("at_ms >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("at_ms < ?")
        args.append(until_ms)
    return where, args


def _where(clauses: Sequence[str]) -> str:
    return "WHERE " + " AND ".join(clauses) if clauses else ""


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


def run_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "flow": row["flow"],
        "version": row["version"],
        "event_id": row["event_id"],
        "ticket_id": row["ticket_id"],
        "status": row["status"],
        "failed_step": row["failed_step"],
        "attempts": row["attempts"],
        "duration_ms": row["duration_ms"],
        "first_at": iso(row["first_at_ms"]),
        "at": iso(row["at_ms"]),
        "steps": orjson.loads(row["steps"]),
        "published": orjson.loads(row["published"]),
        "trace_id": row["trace_id"],
    }


def step_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "step": row["step"],
        "flow": row["flow"],
        "flow_version": row["flow_version"],
        "event_id": row["event_id"],
        "ticket_id": row["ticket_id"],
        "action": row["action"],
        "object": row["object"],
        "status": row["status"],
        "attempt": row["attempt"],
        "duration_ms": row["duration_ms"],
        "salesforce_id": row["salesforce_id"],
        "idempotency_key": row["idempotency_key"],
        "inputs": orjson.loads(row["inputs"]),
        "outputs": orjson.loads(row["outputs"]),
        "error": orjson.loads(row["error"]) if row["error"] else None,
        "at": iso(row["at_ms"]),
        "trace_id": row["trace_id"],
    }


def letter_dict(row: sqlite3.Row) -> dict[str, Any]:
    origin = None
    if row["origin_topic"] is not None:
        origin = {
            "topic": row["origin_topic"],
            "partition": row["origin_partition"],
            "offset": row["origin_offset"],
        }
    return {
        "id": f"{row['partition']}:{row['offset']}",
        "partition": row["partition"],
        "offset": row["offset"],
        "ticket_id": row["ticket_id"],
        "event_id": row["event_id"],
        "flow": row["flow"],
        "flow_version": row["flow_version"],
        "step": row["step"],
        "stage": row["stage"],
        "reason": row["reason"],
        "exception_class": row["exception_class"],
        "exception_message": row["exception_message"],
        "salesforce_error_code": row["salesforce_error_code"],
        "salesforce_fields": orjson.loads(row["salesforce_fields"]),
        "attempts": row["attempts"],
        "origin": origin,
        "at": iso(row["at_ms"]),
        "payload_bytes": row["payload_bytes"],
        "trace_id": row["trace_id"],
        "problem": row["problem"],
    }
