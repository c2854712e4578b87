"""Kafka header conventions: dead-letter context, retry scheduling, replay and redrive markers.

Headers are ``list[tuple[str, bytes]]`` (what aiokafka sends and returns); values are UTF-8
text, integers in decimal, booleans ``true``/``false``, lists comma-separated. Every builder
has a parser, and ``parse(build(x)) == x`` is property-tested. When a name repeats, the last
value wins (Kafka's ``Headers.lastHeader``).

Dead-letter context follows Kafka Connect's ``__connect.errors.*`` headers under our own
prefix ``actionflows.errors.*`` (the table is in ``docs/topics.md``); exception messages go
through :meth:`topics.redaction.Redactor.text` and are truncated, so no header carries a
credential or a value of a masked key.
Trace context lives in :mod:`topics.tracing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pipeline.outcome import qualified_name as qualified_name  # re-exported: the header value
from topics.errors import HeaderError
from topics.redaction import Redactor

Headers = list[tuple[str, bytes]]
HeadersIn = Iterable[tuple[str, bytes]]

ERRORS = "actionflows.errors."
ERROR_TOPIC = ERRORS + "topic"  # Connect: __connect.errors.topic
ERROR_PARTITION = ERRORS + "partition"  # __connect.errors.partition
ERROR_OFFSET = ERRORS + "offset"  # __connect.errors.offset
ERROR_TIMESTAMP = ERRORS + "timestamp"  # (no Connect equivalent) original record time, epoch ms
ERROR_STAGE = ERRORS + "stage"  # __connect.errors.stage
ERROR_EXCEPTION_CLASS = ERRORS + "exception.class.name"  # __connect.errors.exception.class.name
ERROR_EXCEPTION_MESSAGE = ERRORS + "exception.message"  # __connect.errors.exception.message
ERROR_REASON = ERRORS + "reason"
ERROR_SF_CODE = ERRORS + "salesforce.errorCode"
ERROR_SF_FIELDS = ERRORS + "salesforce.fields"
ERROR_FLOW = ERRORS + "flow"  # plays the part of __connect.errors.connector.name
ERROR_FLOW_VERSION = ERRORS + "flow.version"
ERROR_STEP = ERRORS + "step"  # plays the part of __connect.errors.class.name
ERROR_ATTEMPTS = ERRORS + "attempts"
ERROR_EVENT_ID = ERRORS + "event.id"

RETRY = "actionflows.retry."
RETRY_ATTEMPT = RETRY + "attempt"
RETRY_NOT_BEFORE = RETRY + "not-before"
RETRY_FLOW = RETRY + "flow"
RETRY_RESUME_STEP = RETRY + "resume-step"
RETRY_ORIGIN_TOPIC = RETRY + "origin.topic"
RETRY_ORIGIN_PARTITION = RETRY + "origin.partition"
RETRY_ORIGIN_OFFSET = RETRY + "origin.offset"

REPLAY = "actionflows.replay"
REPLAY_DRY_RUN = "actionflows.replay.dry-run"

REDRIVE = "actionflows.redrive."
REDRIVE_ID = REDRIVE + "id"  # the redrive run, e.g. redrive-20261124T101500Z-3f2a9c1e
REDRIVE_FROM = REDRIVE + "from"  # the dead letter: <dead-letter topic>:<partition>:<offset>

MAX_MESSAGE_CHARS = 2000
_INTEGER = re.compile(r"^-?[0-9]{1,19}$")


class Stage(StrEnum):
    """Where processing failed (Connect's stages are KEY_CONVERTER, TASK_PUT, …)."""

    DECODE = "decode"
    ROUTE = "route"
    STEP = "step"
    PUBLISH = "publish"


def get(headers: HeadersIn, name: str) -> bytes | None:
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def replace_headers(base: HeadersIn, new: HeadersIn) -> Headers:
    """``base`` without the names ``new`` sets, followed by ``new``."""
    added = list(new)
    names = {key for key, _ in added}
    return [(key, value) for key, value in base if key not in names] + added


def without_prefix(headers: HeadersIn, prefix: str) -> Headers:
    """Drop a family, e.g. the ``actionflows.errors.`` context before a redrive."""
    return [(key, value) for key, value in headers if not key.startswith(prefix)]


def text(headers: HeadersIn, name: str) -> str | None:
    raw = get(headers, name)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError(name, "not UTF-8") from None


def required_text(headers: HeadersIn, name: str) -> str:
    value = text(headers, name)
    if value is None:
        raise HeaderError(name, "missing")
    return value


def integer(headers: HeadersIn, name: str) -> int | None:
    value = text(headers, name)
    if value is None:
        return None
    if not _INTEGER.match(value):
        raise HeaderError(name, f"expected a decimal integer, got {value[:40]!r}")
    return int(value)


def required_integer(headers: HeadersIn, name: str) -> int:
    value = integer(headers, name)
    if value is None:
        raise HeaderError(name, "missing")
    return value


def _put(headers: Headers, name: str, value: str | int | None) -> None:
    if value is not None:
        headers.append((name, str(value).encode("utf-8")))


_DEFAULT_REDACTOR = Redactor()


def safe_message(
    message: str, limit: int = MAX_MESSAGE_CHARS, redactor: Redactor = _DEFAULT_REDACTOR
) -> str:
    """A message fit for a header: redacted (credentials, personal data), at most ``limit``
    characters. Redacted before it is cut, so a cut never leaves half a value unmasked."""
    cleaned = redactor.text(message)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class DeadLetterContext:
    """Why and where a record failed for good. ``reason`` is a stable code (a DecodeError
    code, a Salesforce errorCode, ``retries_exhausted``…); the message is for humans."""

    topic: str
    partition: int
    offset: int
    stage: Stage
    reason: str
    exception_class: str
    exception_message: str
    timestamp_ms: int | None = None
    event_id: str | None = None
    flow: str | None = None
    flow_version: int | None = None
    step: str | None = None
    attempts: int | None = None
    salesforce_error_code: str | None = None
    salesforce_fields: tuple[str, ...] = ()


def dead_letter_headers(context: DeadLetterContext) -> Headers:
    headers: Headers = []
    _put(headers, ERROR_TOPIC, context.topic)
    _put(headers, ERROR_PARTITION, context.partition)
    _put(headers, ERROR_OFFSET, context.offset)
    _put(headers, ERROR_TIMESTAMP, context.timestamp_ms)
    _put(headers, ERROR_STAGE, context.stage.value)
    _put(headers, ERROR_REASON, context.reason)
    _put(headers, ERROR_EXCEPTION_CLASS, context.exception_class)
    _put(headers, ERROR_EXCEPTION_MESSAGE, safe_message(context.exception_message))
    _put(headers, ERROR_EVENT_ID, context.event_id)
    _put(headers, ERROR_FLOW, context.flow)
    _put(headers, ERROR_FLOW_VERSION, context.flow_version)
    _put(headers, ERROR_STEP, context.step)
    _put(headers, ERROR_ATTEMPTS, context.attempts)
    _put(headers, ERROR_SF_CODE, context.salesforce_error_code)
    if context.salesforce_fields:
        if any(not name or "," in name for name in context.salesforce_fields):
            raise ValueError(
                f"field names must be non-empty, without commas: {context.salesforce_fields}"
            )
        _put(headers, ERROR_SF_FIELDS, ",".join(context.salesforce_fields))
    return headers


def parse_dead_letter_headers(headers: HeadersIn) -> DeadLetterContext:
    """The context of a dead letter; raises HeaderError when a required header is missing."""
    items = list(headers)
    stage = required_text(items, ERROR_STAGE)
    if stage not in Stage.__members__.values():
        raise HeaderError(ERROR_STAGE, f"unknown stage {stage!r}")
    fields = text(items, ERROR_SF_FIELDS)
    return DeadLetterContext(
        topic=required_text(items, ERROR_TOPIC),
        partition=required_integer(items, ERROR_PARTITION),
        offset=required_integer(items, ERROR_OFFSET),
        stage=Stage(stage),
        reason=required_text(items, ERROR_REASON),
        exception_class=required_text(items, ERROR_EXCEPTION_CLASS),
        exception_message=required_text(items, ERROR_EXCEPTION_MESSAGE),
        timestamp_ms=integer(items, ERROR_TIMESTAMP),
        event_id=text(items, ERROR_EVENT_ID),
        flow=text(items, ERROR_FLOW),
        flow_version=integer(items, ERROR_FLOW_VERSION),
        step=text(items, ERROR_STEP),
        attempts=integer(items, ERROR_ATTEMPTS),
        salesforce_error_code=text(items, ERROR_SF_CODE),
        salesforce_fields=tuple(fields.split(",")) if fields else (),
    )


@dataclass(frozen=True, slots=True)
class RetryContext:
    """A record parked on a retry topic. ``attempt`` counts the attempts already made; the
    origin is the first input position, kept unchanged across tiers for lineage."""

    attempt: int
    not_before_ms: int  # epoch milliseconds; consumers wait until then
    origin_topic: str
    origin_partition: int
    origin_offset: int
    flow: str | None = None
    resume_step: str | None = None  # None: run the flow from its first step


def retry_headers(context: RetryContext) -> Headers:
    headers: Headers = []
    _put(headers, RETRY_ATTEMPT, context.attempt)
    _put(headers, RETRY_NOT_BEFORE, context.not_before_ms)
    _put(headers, RETRY_ORIGIN_TOPIC, context.origin_topic)
    _put(headers, RETRY_ORIGIN_PARTITION, context.origin_partition)
    _put(headers, RETRY_ORIGIN_OFFSET, context.origin_offset)
    _put(headers, RETRY_FLOW, context.flow)
    _put(headers, RETRY_RESUME_STEP, context.resume_step)
    return headers


def parse_retry_headers(headers: HeadersIn) -> RetryContext | None:
    """The retry context, or None for a record that is not a retry."""
    items = list(headers)
    if get(items, RETRY_ATTEMPT) is None:
        return None
    return RetryContext(
        attempt=required_integer(items, RETRY_ATTEMPT),
        not_before_ms=required_integer(items, RETRY_NOT_BEFORE),
        origin_topic=required_text(items, RETRY_ORIGIN_TOPIC),
        origin_partition=required_integer(items, RETRY_ORIGIN_PARTITION),
        origin_offset=required_integer(items, RETRY_ORIGIN_OFFSET),
        flow=text(items, RETRY_FLOW),
        resume_step=text(items, RETRY_RESUME_STEP),
    )


@dataclass(frozen=True, slots=True)
class ReplayMarker:
    """Marks a record republished by the replay tool; ``replay_id`` names the replay run."""

    replay_id: str
    dry_run: bool = False


def replay_headers(marker: ReplayMarker) -> Headers:
    if not marker.replay_id:
        raise ValueError("replay_id must not be empty")
    return [
        (REPLAY, marker.replay_id.encode("utf-8")),
        (REPLAY_DRY_RUN, b"true" if marker.dry_run else b"false"),
    ]


def parse_replay(headers: HeadersIn) -> ReplayMarker | None:
    items = list(headers)
    replay_id = text(items, REPLAY)
    if not replay_id:
        return None
    dry_run = text(items, REPLAY_DRY_RUN) or "false"
    if dry_run not in {"true", "false"}:
        raise HeaderError(REPLAY_DRY_RUN, f"expected true or false, got {dry_run[:20]!r}")
    return ReplayMarker(replay_id, dry_run == "true")
