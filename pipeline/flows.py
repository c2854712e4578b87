"""A flow definition as plain frozen data: the schema of one YAML flow file.

These pydantic models only check shape (keys, types, ranges); :mod:`pipeline.validate` checks
meaning (actions, inputs, references, paths) and :mod:`pipeline.compiler` turns a valid
definition into an executable :class:`~pipeline.plan.Plan`. Every model forbids unknown keys,
so a typo (``inptus:``) is an error, not a silently ignored block. Scalars are strict:
``version: "3"`` or ``enabled: "yes"`` are rejected rather than coerced.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.retry import RetryPolicy

FLOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BackoffDefinition(_Definition):
    initial_s: float = Field(default=0.2, ge=0, le=60)
    max_s: float = Field(default=10.0, ge=0, le=3600)
    multiplier: float = Field(default=2.0, ge=1, le=10)


class PolicyDefinition(_Definition):
    """``policy:`` of a step (or of the flow, as the default for its steps)."""

    max_attempts: int = Field(default=5, ge=1, le=100)
    max_attempts_in_process: int = Field(default=3, ge=1, le=20)
    backoff: BackoffDefinition = BackoffDefinition()
    retry_topics: bool = True
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    def to_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            max_attempts_in_process=self.max_attempts_in_process,
            initial_s=self.backoff.initial_s,
            multiplier=self.backoff.multiplier,
            max_s=self.backoff.max_s,
            retry_topics=self.retry_topics,
            timeout_s=self.timeout_s,
        )


class TriggerDefinition(_Definition):
    """Which events start the flow. An empty list means "any"."""

    # Logical inputs ("tickets", "interactions"); exact event types or shell-style "ticket.*".
    topics: tuple[str, ...] = Field(default=(), strict=False)
    event_types: tuple[str, ...] = Field(default=(), strict=False)
    when: dict[str, Any] | None = None  # a condition on `event` (no steps yet)


class StepDefinition(_Definition):
    id: str = Field(pattern=STEP_ID_PATTERN)
    action: str  # salesforce.create_record, …find_record, …update_record, …delete_record, …
    object: str | None = None  # may be left out when the action supports exactly one object
    description: str = ""
    when: dict[str, Any] | None = None  # the step is skipped when this is false
    inputs: dict[str, Any] = Field(default_factory=dict)  # the catalogue's named inputs
    fields: dict[str, Any] = Field(default_factory=dict)  # extra raw Salesforce fields
    # update_record: text added to the end of these fields, without losing concurrent writes
    append: dict[str, Any] = Field(default_factory=dict)
    # create_record: the business key that makes the record unique ("one lead per email")
    unique_by: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # handed to the executor as is
    policy: PolicyDefinition | None = None
    on_error: Literal["fail", "continue"] = "fail"


class FlowDefinition(_Definition):
    name: str = Field(pattern=FLOW_NAME_PATTERN)
    version: int = Field(ge=1)
    enabled: bool = True
    description: str = ""
    trigger: TriggerDefinition = TriggerDefinition()
    policy: PolicyDefinition | None = None  # default policy of every step
    steps: tuple[StepDefinition, ...] = Field(min_length=1, strict=False)
    publish: dict[str, Any] = Field(default_factory=dict)  # named values rendered after the run

    def policy_of(self, step: StepDefinition) -> RetryPolicy:
        """The step's policy: keys set on the step override the flow's, which override defaults."""
        merged = (self.policy or PolicyDefinition()).model_dump()
        if step.policy is not None:
            override = step.policy.model_dump(exclude_unset=True)
            merged["backoff"] = {**merged["backoff"], **override.pop("backoff", {})}
            merged.update(override)
        return PolicyDefinition.model_validate(merged).to_policy()
