"""Topic slices and record filters for the operator tools, as pure data and functions.

A slice is "which partitions, from where, to where" of one topic, as an operator writes it:

- ``--from-offset N`` / ``--to-offset N`` apply to every selected partition; ``P:N`` applies to
  partition ``P`` only (repeatable, and it wins over a plain ``N``). Both bounds are inclusive:
  ``--from-offset 0:42 --to-offset 0:42`` is exactly one record.
- ``--since T`` is inclusive and ``--until T`` exclusive (``offsets_for_times`` semantics). ``T``
  is ISO 8601 (a naive time is UTC) or a duration back from now: ``90s``, ``30m``, ``2h``, ``1d``.
- The partitions are those given with ``--partition``, else those named in ``P:N`` bounds, else
  all of the topic's.

:func:`resolve_ranges` turns a :class:`SliceSpec` plus what the broker said (first, end and
time-lookup offsets, captured once at start) into half-open ``[start, end)`` ranges, so a
replay into the topic it reads still terminates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from pipeline.events import Event
from topics.catalogue import parse_delay

_POSITION = re.compile(r"^(\d+):(\d+)$")


class SliceError(ValueError):
    """A slice or filter an operator wrote that cannot mean anything; the message says why."""


def parse_position(text: str) -> tuple[int, int]:
    """``"3:120"`` → ``(3, 120)``: a record's partition and offset."""
    match = _POSITION.match(text.strip())
    if match is None:
        raise SliceError(f"not a PARTITION:OFFSET position: {text!r} (expected e.g. 0:42)")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, slots=True)
class OffsetBound:
    """One offset bound: a value for every partition, and per-partition overrides."""

    default: int | None = None
    per_partition: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, values: Iterable[str]) -> OffsetBound | None:
        """``["100"]``, ``["0:100", "1:250"]`` or a mix; None when no value was given."""
        default: int | None = None
        per_partition: dict[int, int] = {}
        given = False
        for text in values:
            given = True
            if text.strip().isdigit():
                if default is not None:
                    raise SliceError(f"two offsets for every partition: {default} and {text}")
                default = int(text)
                continue
            partition, offset = parse_position(text)
            if partition in per_partition:
                raise SliceError(f"two offsets for partition {partition}")
            per_partition[partition] = offset
        return cls(default, per_partition) if given else None

    def for_partition(self, partition: int) -> int | None:
        return self.per_partition.get(partition, self.default)


def parse_time(text: str, *, now_ms: int) -> int:
    """ISO 8601 (naive means UTC) or a duration ago (``30m``) → epoch milliseconds."""
    value = text.strip()
    try:
        return now_ms - parse_delay(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SliceError(
            f"not a time: {text!r} (expected ISO 8601 such as 2026-11-24T10:00:00Z, "
            "or a duration ago such as 30m or 2h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SliceSpec:
    """What the operator asked for; :func:`resolve_ranges` makes it concrete."""

    partitions: tuple[int, ...] = ()
    from_offsets: OffsetBound | None = None
    to_offsets: OffsetBound | None = None  # inclusive
    since_ms: int | None = None  # inclusive
    until_ms: int | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.from_offsets is not None and self.since_ms is not None:
            raise SliceError("give a start offset or --since, not both")
        if self.to_offsets is not None and self.until_ms is not None:
            raise SliceError("give an end offset or --until, not both")
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.since_ms >= self.until_ms
        ):
            raise SliceError("--since must be earlier than --until")
        if any(p < 0 for p in self.partitions):
            raise SliceError("partitions are numbered from 0")

    def selected(self, available: Iterable[int]) -> tuple[int, ...]:
        """The partitions to read; raises naming any that the topic does not have."""
        existing = sorted(available)
        named = set(self.partitions)
        if not named:
            for bound in (self.from_offsets, self.to_offsets):
                if bound is not None:
                    named |= set(bound.per_partition)
        missing = sorted(named - set(existing))
        if missing:
            raise SliceError(
                f"no partition {', '.join(map(str, missing))} (the topic has {len(existing)})"
            )
        return tuple(sorted(named)) if named else tuple(existing)


def resolve_ranges(
    spec: SliceSpec,
    partitions: Iterable[int],
    first: Mapping[int, int],
    end: Mapping[int, int],
    since: Mapping[int, int | None] | None = None,
    until: Mapping[int, int | None] | None = None,
) -> dict[int, tuple[int, int]]:
    """Half-open ``[start, end)`` per partition, clamped to what the log still holds.

    ``first``/``end`` are the beginning and end offsets; ``since``/``until`` the results of
    ``offsets_for_times`` (None: no record that late, i.e. the end).
    """
    ranges: dict[int, tuple[int, int]] = {}
    for partition in partitions:
        low, high = first[partition], end[partition]
        start, stop = low, high
        if spec.from_offsets is not None:
            wanted = spec.from_offsets.for_partition(partition)
            start = low if wanted is None else wanted
        elif spec.since_ms is not None and since is not None:
            found = since.get(partition)
            start = high if found is None else found
        if spec.to_offsets is not None:
            wanted = spec.to_offsets.for_partition(partition)
            stop = high if wanted is None else wanted + 1
        elif spec.until_ms is not None and until is not None:
            found = until.get(partition)
            stop = high if found is None else found
        if start > stop and spec.from_offsets is not None and spec.to_offsets is not None:
            raise SliceError(
                f"partition {partition}: --from-offset {start} is after --to-offset {stop - 1}"
            )
        start = min(max(start, low), high)  # records before ``low`` are gone (retention)
        ranges[partition] = (start, min(max(stop, start), high))
    return ranges


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which records of a slice to take: any of these tickets, any of these event types.

    Types are shell-style patterns (``ticket.*``), as in flow triggers. A ticket matches the
    decoded event's ticket id or, for a record that does not decode, the record key. A type
    filter never matches a record that does not decode.
    """

    tickets: frozenset[str] = frozenset()
    types: tuple[str, ...] = ()

    @property
    def needs_event(self) -> bool:
        return bool(self.tickets or self.types)

    def matches(self, key: bytes | None, event: Event | None) -> bool:
        if self.tickets:
            ticket = event.ticket_id if event is not None else _text(key)
            if ticket not in self.tickets:
                return False
        return not self.types or (
            event is not None and any(fnmatchcase(event.type, t) for t in self.types)
        )


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")
