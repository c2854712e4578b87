"""The step ledger port, an in-memory implementation, and the deterministic keys of a run.

"Nothing done twice" rests on two things:

- the ledger: before a step runs, the runner asks the ledger whether the step already completed
  for this run (same event, flow and flow version); if so its recorded outputs are reused and
  Salesforce is not called. A durable ledger (a compacted topic, a table) implements the same
  two methods; :class:`InMemoryLedger` serves tests and single-process runs.
- :func:`idempotency_key`: a creating step writes this key into the object's external-id
  field (an upsert), so even a step whose ledger record was lost finds its own record again.
  The key leaves out the flow version on purpose: a new version of a flow must not create a
  second record for an event the previous version already handled.

A create that names ``unique_by`` uses :func:`business_key` instead: derived from the object and
the business value (an email), not from the event, so every event about one person, on any
worker, in any flow, finds or creates the same record.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

StepStatus = Literal["succeeded", "skipped", "failed"]

IDEMPOTENCY_KEY_PREFIX = "af1-"


def _digest(*parts: str | int) -> str:
    # JSON of the list is an unambiguous encoding: ("a-b", "c") and ("a", "b-c") differ.
    # orjson writes the bytes json.dumps(..., ensure_ascii=False, separators=(",", ":")) did,
    # which the keys already stored were made from (tests/pipeline/test_keys_stable.py).
    payload = orjson.dumps(parts)
    raw = hashlib.blake2b(payload, digest_size=16).digest()
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


@functools.lru_cache(maxsize=4096)  # the runner asks twice per step: to act, then to report
def idempotency_key(event_id: str, flow_name: str, step_id: str) -> str:
    """``af1-`` + base32 of a 128-bit blake2b of the triple: 30 characters, stable forever.

    Fits a Salesforce Text(80) external-id field; ``af1`` versions the scheme.
    """
    return IDEMPOTENCY_KEY_PREFIX + _digest(event_id, flow_name, step_id)


BUSINESS_KEY_PREFIX = "afu1-"


def business_key(object_: str, value: str) -> str:
    """``afu1-`` + base32 of a 128-bit blake2b of (object, value): 31 characters, stable.

    The same value gives the same key for every event, so creates keyed by it converge on one
    record. ``value`` is taken as given: normalise it in the flow (``| lower | trim``).
    """
    return BUSINESS_KEY_PREFIX + _digest("unique_by", object_, value)


def run_key(event_id: str, flow_name: str, flow_version: int) -> str:
    """The ledger key of one run: one event through one version of one flow."""
    return "run1-" + _digest(event_id, flow_name, flow_version)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A completed step as the ledger keeps it. ``failed`` is recorded only for steps whose
    failure the flow tolerates (``on_error: continue``), so a redelivery does not retry them."""

    status: StepStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    salesforce_id: str | None = None
    attempts: int = 0


class Ledger(Protocol):
    async def get(self, run_key: str, step_id: str) -> StepRecord | None: ...

    async def put(self, run_key: str, step_id: str, record: StepRecord) -> None:
        """Record a completed step; return only once the record is durable."""
        ...

    async def sync(self) -> None:
        """Return once records written elsewhere before this call are visible to ``get``
        (a shared ledger read by several workers); the engine calls it before each batch."""
        ...


class InMemoryLedger:
    """A dict behind the :class:`Ledger` port. Not durable: for tests and a single process."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], StepRecord] = {}

    async def get(self, run_key: str, step_id: str) -> StepRecord | None:
        return self._records.get((run_key, step_id))

    async def put(self, run_key: str, step_id: str, record: StepRecord) -> None:
        self._records[(run_key, step_id)] = record

    async def sync(self) -> None:
        return None  # one process: always in sync

    def records(self, run_key: str) -> dict[str, StepRecord]:
        """Every step recorded for one run, by step id (for tests and run history)."""
        return {step: record for (key, step), record in self._records.items() if key == run_key}
