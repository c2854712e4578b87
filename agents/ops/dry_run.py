"""What a replayed event would do, without doing it: the dry run of ``actionflows replay``.

Each event goes through the flows it would start (as the engine routes it), with
``pipeline.runner.run(..., dry_run=True)``: finds run against the org, writes are only
described. The ledger is the worker's own (``actionflows replay`` reads the ledger topic), so
the plan says what a replay would really do: the steps the ledger holds are reused, not run
again, and a run that stopped part-way reads again and makes only the writes it has not made.
A dry run writes neither to the ledger nor to Salesforce; the flip side is that a later event of
a ticket cannot see what an earlier one would have created (each is planned on today's ledger).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.engine import LOGICAL_INPUTS
from pipeline.events import Event
from pipeline.plan import FlowSet, Plan
from pipeline.result import RunResult, RunStatus, StepStatus
from pipeline.runner import Ports, run
from topics import headers as h
from topics.catalogue import Catalogue
from topics.redaction import DEFAULT_REDACT_KEYS, redact


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One Salesforce write a run would make."""

    flow: str
    step: str
    action: str  # e.g. "salesforce.create_record"
    object: str  # e.g. "lead"
    inputs: Mapping[str, Any]
    fields: Mapping[str, Any]
    appends: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.action.removeprefix('salesforce.')} {self.object}"

    def shown(self, *, raw: bool = False) -> dict[str, Any]:
        """Inputs and fields together (appended texts under ``append``), PII and secrets masked
        unless ``raw``."""
        values = {**self.inputs, **self.fields}
        if self.appends:
            values["append"] = dict(self.appends)
        return values if raw else redact(values, DEFAULT_REDACT_KEYS)


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """One flow over one event, dry: how it would end and what it would write."""

    flow: str
    version: int
    status: str  # a pipeline RunStatus value; "succeeded" means "would succeed"
    writes: tuple[PlannedWrite, ...]
    failed_step: str | None = None
    reason: str | None = None
    reused: tuple[str, ...] = ()  # steps the ledger holds: a replay would not run them again


@dataclass(frozen=True, slots=True)
class EventPlan:
    """One selected record: its position, its event (if it decodes) and the flows it starts."""

    partition: int
    offset: int
    event: Event | None
    flows: tuple[FlowPlan, ...] = ()
    error: str | None = None  # why the record does not decode

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass
class DryRunTally:
    events: int = 0
    undecodable: int = 0
    runs: int = 0
    failed_runs: int = 0
    writes: Counter[str] = field(default_factory=Counter)

    def add(self, plan: EventPlan) -> None:
        self.events += 1
        self.undecodable += plan.event is None
        for flow in plan.flows:
            self.runs += 1
            self.failed_runs += flow.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED)
            self.writes.update(write.label for write in flow.writes)


class DryRunner:
    """Plans events against the flows and the org behind ``ports.gateway``."""

    def __init__(self, flows: FlowSet, catalogue: Catalogue, ports: Ports) -> None:
        self.flows = flows
        self.ports = ports
        self._logical = dict(zip((s.name for s in catalogue.inputs), LOGICAL_INPUTS, strict=True))

    def plans_for(self, event: Event, topic: str, headers: h.HeadersIn) -> tuple[Plan, ...]:
        """The plans the engine would run: a retry names its flow, else the trigger match."""
        retry = h.parse_retry_headers(headers)
        if retry is not None and retry.flow:
            plan = self.flows.get(retry.flow)
            return (plan,) if plan is not None else ()
        return self.flows.match(event, self._logical.get(topic))

    async def plan(
        self, partition: int, offset: int, event: Event, topic: str, headers: h.HeadersIn
    ) -> EventPlan:
        flows = []
        for plan in self.plans_for(event, topic, headers):
            result = await run(plan, event, self.ports, dry_run=True)
            flows.append(_flow_plan(result))
        return EventPlan(partition, offset, event, tuple(flows))


def _flow_plan(result: RunResult) -> FlowPlan:
    writes = tuple(
        PlannedWrite(
            result.flow,
            s.step_id,
            s.action,
            s.object,
            dict(s.inputs),
            dict(s.fields),
            dict(s.appends),
        )
        for s in result.steps
        if s.status == StepStatus.DRY_RUN
    )
    reused = tuple(s.step_id for s in result.steps if s.status == StepStatus.REUSED)
    return FlowPlan(
        result.flow,
        result.version,
        str(result.status),
        writes,
        result.failed_step,
        result.reason,
        reused,
    )
