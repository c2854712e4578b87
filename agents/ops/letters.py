"""Dead letters as the operator tools see them, and what a redrive publishes. Pure.

A redrive re-injects the original record (key and value unchanged) into its original input
topic and partition. A letter that names a flow goes back as a retry of that flow
(``RetryContext(attempt=0, not_before_ms=now, flow=…, resume_step=<failed step>)``): the engine
re-runs only that flow, and the steps the ledger holds are reused, not executed again. A letter
without a flow (a decode failure, an engine defect) goes back as a plain record: decoded and
routed again, as if it had just arrived.

Bookkeeping: every redriven letter gets a marker on the compacted ``<prefix>.dlq-redriven``
topic, keyed by the letter's ``partition:offset``; a later redrive skips marked letters unless
forced. The re-injected record also carries ``actionflows.redrive.*`` headers naming the redrive
and the letter, so a letter that fails again says where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from agents.ops.slices import Outgoing
from topics import headers as h
from topics.errors import HeaderError


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic, its context parsed (or why it would not parse)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    context: h.DeadLetterContext | None
    problem: str | None = None  # the context headers are missing or malformed

    @classmethod
    def of(
        cls,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> DeadLetter:
        items = tuple(headers)
        try:
            context, problem = h.parse_dead_letter_headers(items), None
        except HeaderError as error:
            context, problem = None, str(error)
        return cls(partition, offset, timestamp_ms, key, value or b"", items, context, problem)

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def ticket(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", errors="replace")

    @property
    def error_code(self) -> str | None:
        """The Salesforce errorCode when there is one, else the reason code."""
        if self.context is None:
            return None
        return self.context.salesforce_error_code or self.context.reason


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters to take; each set is "any of", sets combine with "and". Codes match the
    reason (``decode.malformed_json``, or just ``malformed_json``) or the Salesforce errorCode,
    ignoring case. A letter whose context does not parse matches only the empty filter."""

    error_codes: frozenset[str] = frozenset()
    flows: frozenset[str] = frozenset()
    steps: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.error_codes or self.flows or self.steps or self.stages)

    def matches(self, letter: DeadLetter) -> bool:
        context = letter.context
        if context is None:
            return self.empty
        reason = context.reason
        codes = {
            c.lower()
            for c in (reason, reason.partition(".")[2], context.salesforce_error_code)
            if c
        }
        return (
            (not self.error_codes or bool(codes & {c.lower() for c in self.error_codes}))
            and (not self.flows or context.flow in self.flows)
            and (not self.steps or context.step in self.steps)
            and (not self.stages or context.stage.value in self.stages)
        )


class NotRedrivable(ValueError):
    """A letter without the context a redrive needs (where it came from)."""


def origin(letter: DeadLetter) -> tuple[str, int, int]:
    """Where the record first arrived: a retry's origin if it carries one, else the context's
    position (the engine writes the origin there too)."""
    if letter.context is None:
        raise NotRedrivable(f"{letter.position}: {letter.problem}")
    try:
        retry = h.parse_retry_headers(letter.headers)
    except HeaderError:
        retry = None
    if retry is not None:
        return retry.origin_topic, retry.origin_partition, retry.origin_offset
    return letter.context.topic, letter.context.partition, letter.context.offset


def redrive_record(
    letter: DeadLetter, *, dead_letter_topic: str, redrive_id: str, now_ms: int
) -> Outgoing:
    """The record a redrive re-injects for ``letter``; see the module docstring."""
    topic, partition, offset = origin(letter)
    assert letter.context is not None  # origin() refused letters without one
    headers = [
        (name, value)
        for name, value in letter.headers
        if not name.startswith((h.ERRORS, h.RETRY, h.REDRIVE))
    ]
    if letter.context.flow is not None and letter.context.stage is not h.Stage.DECODE:
        headers += h.retry_headers(
            h.RetryContext(
                attempt=0,
                not_before_ms=now_ms,
                origin_topic=topic,
                origin_partition=partition,
                origin_offset=offset,
                flow=letter.context.flow,
                resume_step=letter.context.step,
            )
        )
    headers += [
        (h.REDRIVE_ID, redrive_id.encode()),
        (h.REDRIVE_FROM, f"{dead_letter_topic}:{letter.position}".encode()),
    ]
    return Outgoing(topic, letter.key, letter.value, headers, partition)


def marker_key(letter: DeadLetter) -> bytes:
    return letter.position.encode()


def marker_value(letter: DeadLetter, sent: Outgoing, *, redrive_id: str, now_ms: int) -> bytes:
    context = letter.context
    return orjson.dumps(
        {
            "redrive_id": redrive_id,
            "at_ms": now_ms,
            "topic": sent.topic,
            "partition": sent.partition,
            "flow": context.flow if context else None,
            "step": context.step if context else None,
        }
    )


def parse_marker(value: bytes | None) -> dict[str, Any] | None:
    """A marker's value; None for a tombstone (a forgotten marker) or an unreadable one."""
    if not value:
        return None
    try:
        marker = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return marker if isinstance(marker, dict) else None


def how(sent: Outgoing) -> str:
    """``retry of create-lead at create_lead`` or ``plain record``: what the engine will do."""
    retry = h.parse_retry_headers(sent.headers)
    if retry is None:
        return "plain record (decoded and routed again)"
    at = f" at {retry.resume_step}" if retry.resume_step else ""
    return f"retry of flow {retry.flow}{at}"
