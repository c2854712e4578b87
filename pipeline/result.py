"""What a run reports: one :class:`StepOutcome` per step reached, and the run's status.

These are plain data, built for the step-output topic, the dead-letter topic (with its
context headers) and run history: everything is JSON-friendly via :meth:`RunResult.as_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.outcome import ErrorInfo


class StepStatus(StrEnum):
    """How one step of one run ended; the step-output topic carries these values."""

    SUCCEEDED = "succeeded"  # executed now
    SKIPPED = "skipped"  # its ``when`` was false
    FAILED = "failed"
    REUSED = "reused"  # the ledger had it: not executed again
    DRY_RUN = "dry_run"  # replay dry run: the write that would have been made


class RunStatus(StrEnum):
    """How a run ended; the run-results topic carries these values."""

    SUCCEEDED = "succeeded"  # every step succeeded, was skipped, reused or tolerated its failure
    SKIPPED = "skipped"  # no step ran: every `when` was false
    RETRY_LATER = "retry_later"  # a transient failure outlived the in-process attempts
    PAUSED = "paused"  # the org's API budget is spent; redeliver after `retry_after`
    DEAD_LETTER = "dead_letter"  # a permanent (or too persistent, or ambiguous) failure
    NO_MATCH = "no_match"  # no flow matched the event (the engine reports it; no run happened)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One step of one run.

    ``status``: ``succeeded`` (executed now), ``skipped`` (its ``when`` was false), ``failed``,
    ``reused`` (the ledger had it: not executed again; ``recorded_status`` says how it ended),
    or ``dry_run`` (a write a dry run did not make: ``inputs`` and ``fields`` show it).
    ``attempt`` counts attempts across deliveries; a throttled call is not counted.
    """

    step_id: str
    action: str
    object: str
    status: StepStatus
    idempotency_key: str
    inputs: Mapping[str, Any] = field(default_factory=dict)  # as rendered
    fields: Mapping[str, Any] = field(default_factory=dict)  # extra Salesforce fields, rendered
    appends: Mapping[str, Any] = field(default_factory=dict)  # update: text added to fields
    outputs: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 0
    duration_ms: float = 0.0
    salesforce_id: str | None = None
    matched: bool | None = None  # find: whether a record matched
    error: ErrorInfo | None = None
    reason: str | None = None  # why a failure ends as it does (retry later, dead letter, …)
    recorded_status: str | None = None  # reused: the status the ledger recorded


@dataclass(frozen=True, slots=True)
class RunResult:
    """The result of one event through one flow version.

    On failure, ``failed_step`` is where a redrive resumes (``run(…, resume_from=…)``),
    ``reason`` (for people), ``reason_code`` (stable, e.g. ``salesforce.DUPLICATES_DETECTED``;
    see :mod:`pipeline.outcome`) and ``error`` say why, and ``retry_after`` is the gateway's
    hint for a pause.
    ``published`` holds the flow's ``publish:`` values, rendered after a successful run.
    """

    flow: str
    version: int
    event_id: str
    run_key: str
    status: RunStatus
    steps: tuple[StepOutcome, ...]
    failed_step: str | None = None
    reason: str | None = None
    error: ErrorInfo | None = None
    retry_after: float | None = None
    reason_code: str | None = None
    published: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def resume_from(self) -> str | None:
        return self.failed_step

    @property
    def outputs(self) -> dict[str, Mapping[str, Any]]:
        """Each step's outputs by step id (empty for skipped and failed steps)."""
        return {outcome.step_id: outcome.outputs for outcome in self.steps}

    def step(self, step_id: str) -> StepOutcome | None:
        return next((outcome for outcome in self.steps if outcome.step_id == step_id), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (str enums, dicts, lists) ready for a JSON codec."""
        data = asdict(self)
        data["status"] = str(self.status)
        return data
