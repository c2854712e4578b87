"""The executable form of a flow: immutable, pre-parsed, and the routing of events to plans.

A :class:`Plan` is what :mod:`pipeline.compiler` makes of a validated definition: every template
and condition is parsed, every step knows its catalogue spec, its retry policy and whether it
is idempotent. A :class:`FlowSet` holds the plans of a folder and answers "which plans does
this event, read from this logical topic, start?".
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.actions import ActionSpec
from pipeline.conditions import Condition
from pipeline.events import Event
from pipeline.retry import RetryPolicy
from pipeline.templating import MapOf, Value

CREATE = "salesforce.create_record"


@dataclass(frozen=True, slots=True)
class CompiledStep:
    id: str
    kind: str
    object: str
    spec: ActionSpec
    inputs: MapOf
    fields: MapOf  # extra raw Salesforce fields
    options: MapOf  # includes external_id_field when one is configured for the object
    when: Condition | None
    policy: RetryPolicy
    on_error: Literal["fail", "continue"]
    idempotent: bool  # may the step be retried after an ambiguous failure?
    appends: MapOf  # update: field -> text added to its end
    unique_by: Value | None  # create: the business key (find or create by it)

    @property
    def writes(self) -> bool:
        return self.spec.writes


def is_idempotent(kind: str, writes: bool, external_id_field: str | None) -> bool:
    """Reads, updates and deletes are safe to repeat; a create only as an external-id upsert.

    A lead conversion is not: a second one fails or converts again, so it counts as unsafe.
    """
    if not writes:
        return True
    if kind == CREATE:
        return external_id_field is not None
    return kind in ("salesforce.update_record", "salesforce.delete_record")


@functools.cache
def _types_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression for a trigger's shell-style type patterns (fnmatchcase's rules),
    compiled once per trigger rather than matched pattern by pattern for every event."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class Trigger:
    topics: frozenset[str]  # empty: every topic
    event_types: tuple[str, ...]  # empty: every type; shell-style patterns such as "ticket.*"
    when: Condition | None

    def matches(
        self, event: Event, topic: str | None, context: Callable[[], Mapping[str, Any]]
    ) -> bool:
        """Whether the event starts the flow; ``context`` is called only if ``when`` needs it."""
        if self.topics and topic is not None and topic not in self.topics:
            return False
        if self.event_types and not _types_pattern(self.event_types).match(event.type):
            return False
        return self.when is None or self.when.evaluate(context())


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    version: int
    enabled: bool
    trigger: Trigger
    steps: tuple[CompiledStep, ...]
    publish: MapOf  # rendered after a successful run, for downstream consumers
    source: str = ""  # the file the flow came from
    description: str = ""
    # blake2b of the definition's canonical JSON: tells two contents of one version apart in
    # run history (a flow edited without a version bump reuses the old version's ledger).
    digest: str = ""

    def step(self, step_id: str) -> CompiledStep | None:
        return next((step for step in self.steps if step.id == step_id), None)

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(step.id for step in self.steps)


@dataclass(frozen=True, slots=True)
class FlowSet:
    """Every plan of a folder, in file order. Flow names are unique within a set."""

    plans: tuple[Plan, ...] = ()

    def match(self, event: Event, topic: str | None = None) -> tuple[Plan, ...]:
        """The enabled plans this event starts. ``topic`` is the logical input name
        ("tickets", "interactions"); ``None`` skips the topic filter (e.g. a replay)."""
        built: list[Mapping[str, Any]] = []

        def context() -> Mapping[str, Any]:  # made once, and only for a trigger with `when`
            if not built:
                built.append({"event": event.as_context()})
            return built[0]

        return tuple(
            plan
            for plan in self.plans
            if plan.enabled and plan.trigger.matches(event, topic, context)
        )

    def get(self, name: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.name == name), None)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)
