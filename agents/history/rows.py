"""Records of the output topics as rows of the run history. Pure: a Kafka record in, a row out.

- a run result (``actionflows.run-result/1``) becomes a :class:`RunRow`;
- a step output (``actionflows.step-output/1``) becomes a :class:`StepRow`; its inputs and
  outputs are already redacted on the topic (PII by the worker's rules), and secret-named keys
  are masked again here, whatever the worker's settings were;
- a dead letter becomes a :class:`LetterRow` from its ``actionflows.errors.*`` headers; its
  payload is not kept (``actionflows dlq show P:O`` shows it to whoever may read the topic).

A record that is not what its topic promises becomes an :class:`Unreadable` with the reason, so
the indexer counts and logs it instead of stopping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from topics import headers as h
from topics.errors import HeaderError
from topics.records import RUN_RESULT_SCHEMA, STEP_OUTPUT_SCHEMA
from topics.redaction import SECRET_KEYS, redact
from topics.tracing import read_trace


@dataclass(frozen=True, slots=True)
class Source:
    """One consumed record and where it came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @property
    def trace_id(self) -> str | None:
        context = read_trace(self.headers)
        return context.trace_id if context else None


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    flow: str
    version: int
    event_id: str
    ticket_id: str
    status: str
    failed_step: str | None
    attempts: int
    duration_ms: float
    at_ms: int
    steps: str  # JSON: [{step, status, salesforce_id}] from the run result
    published: str  # JSON
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class StepRow:
    run_id: str
    step: str
    seq: int  # the record's offset: steps of a run are published in order on one partition
    flow: str
    flow_version: int
    event_id: str
    ticket_id: str
    action: str
    object: str | None
    status: str
    attempt: int
    duration_ms: float
    salesforce_id: str | None
    idempotency_key: str | None
    inputs: str  # JSON, redacted
    outputs: str  # JSON, redacted
    error: str | None  # JSON
    at_ms: int
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class LetterRow:
    partition: int
    offset: int
    ticket_id: str | None  # the record key as text
    event_id: str | None
    flow: str | None
    flow_version: int | None
    step: str | None
    stage: str | None
    reason: str | None
    exception_class: str | None
    exception_message: str | None
    salesforce_error_code: str | None
    salesforce_fields: str  # JSON list
    attempts: int | None
    origin_topic: str | None
    origin_partition: int | None
    origin_offset: int | None
    at_ms: int
    payload_bytes: int
    trace_id: str | None
    problem: str | None  # the context headers were missing or malformed


@dataclass(frozen=True, slots=True)
class Unreadable:
    reason: str


Row = RunRow | StepRow | LetterRow | Unreadable


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _ms(text: Any) -> int:
    return int(datetime.fromisoformat(str(text)).timestamp() * 1000)


def _object(source: Source, schema: str) -> Mapping[str, Any]:
    if source.value is None:
        raise ValueError("a null value")
    data = orjson.loads(source.value)
    if not isinstance(data, dict) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"expected schema {schema}, found {found!r}")
    return data


def run_row(source: Source) -> RunRow | Unreadable:
    try:
        data = _object(source, RUN_RESULT_SCHEMA)
        return RunRow(
            run_id=str(data["run_id"]),
            flow=str(data["flow"]),
            version=int(data["version"]),
            event_id=str(data["event_id"]),
            ticket_id=str(data["ticket_id"]),
            status=str(data["status"]),
            failed_step=data.get("failed_step"),
            attempts=int(data.get("attempts") or 0),
            duration_ms=float(data.get("duration_ms") or 0.0),
            at_ms=_ms(data["at"]),
            steps=_json(data.get("steps") or []),
            published=_json(redact(data.get("published") or {}, SECRET_KEYS)),
            trace_id=source.trace_id,
        )
    except (ValueError, KeyError, TypeError) as error:  # orjson.JSONDecodeError is a ValueError
        return Unreadable(f"run result {source.partition}:{source.offset}: {error!r}")


def step_row(source: Source) -> StepRow | Unreadable:
    try:
        data = _object(source, STEP_OUTPUT_SCHEMA)
        error = data.get("error")
        return StepRow(
            run_id=str(data["run_id"]),
            step=str(data["step"]),
            seq=source.offset,
            flow=str(data["flow"]),
            flow_version=int(data["flow_version"]),
            event_id=str(data["event_id"]),
            ticket_id=str(data["ticket_id"]),
            action=str(data["action"]),
            object=data.get("object"),
            status=str(data["status"]),
            attempt=int(data.get("attempt") or 0),
            duration_ms=float(data.get("duration_ms") or 0.0),
            salesforce_id=data.get("salesforce_id"),
            idempotency_key=data.get("idempotency_key"),
            inputs=_json(redact(data.get("inputs") or {}, SECRET_KEYS)),
            outputs=_json(redact(data.get("outputs") or {}, SECRET_KEYS)),
            error=_json(redact(error, SECRET_KEYS)) if isinstance(error, dict) else None,
            at_ms=_ms(data["at"]),
            trace_id=source.trace_id,
        )
    except (ValueError, KeyError, TypeError) as error:
        return Unreadable(f"step output {source.partition}:{source.offset}: {error!r}")


def letter_row(source: Source) -> LetterRow:
    """Always a row: a letter whose context does not parse is listed with the problem."""
    try:
        context: h.DeadLetterContext | None = h.parse_dead_letter_headers(source.headers)
        problem = None
    except HeaderError as error:
        context, problem = None, str(error)
    key = source.key.decode("utf-8", "replace") if source.key is not None else None
    c = context
    return LetterRow(
        partition=source.partition,
        offset=source.offset,
        ticket_id=key,
        event_id=c.event_id if c else None,
        flow=c.flow if c else None,
        flow_version=c.flow_version if c else None,
        step=c.step if c else None,
        stage=str(c.stage) if c else None,
        reason=c.reason if c else None,
        exception_class=c.exception_class if c else None,
        exception_message=c.exception_message if c else None,
        salesforce_error_code=c.salesforce_error_code if c else None,
        salesforce_fields=_json(list(c.salesforce_fields) if c else []),
        attempts=c.attempts if c else None,
        origin_topic=c.topic if c else None,
        origin_partition=c.partition if c else None,
        origin_offset=c.offset if c else None,
        at_ms=source.timestamp_ms,
        payload_bytes=len(source.value or b""),
        trace_id=source.trace_id,
        problem=problem,
    )
