"""The runner: one event through one compiled plan, against ports. Deterministic orchestration.

The runner decides; the executor acts. It renders inputs, evaluates ``when``, builds one
:class:`~pipeline.actions.ActionInput` per step and hands it to the injected executor (by
default :func:`pipeline.catalogue.execute`), which alone speaks to the gateway. All time goes
through the injected :class:`Clock`, all randomness through the injected ``rng``, and every
completed step is recorded in the :class:`~pipeline.ledger.Ledger` before the next starts, so a
redelivered event reuses what was done instead of doing it again.

The run stops at the first step that fails (unless it says ``on_error: continue`` and the
failure is final); :mod:`pipeline.outcome` decides whether that means retry now, retry later,
pause, or dead letter. A redrive passes ``resume_from=<failed step>``: earlier steps must be in
the ledger.

A run the ledger holds in part (it stopped at a failure or a crash, and comes back as a retry,
a redrive or a redelivery) resumes on what the org holds *now*: the steps that only read (finds)
run again and every skip is decided again, while the writes it made are reused, never repeated.
A stale "no lead found" thus cannot send a redriven run into creating a duplicate. A run the
ledger holds whole is reused whole.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.actions import ActionInput, ActionResult
from pipeline.catalogue import execute as catalogue_execute
from pipeline.errors import ResumeError
from pipeline.events import Event
from pipeline.ledger import Ledger, StepRecord, business_key, idempotency_key, run_key
from pipeline.outcome import Disposition, Verdict, classify, error_info
from pipeline.plan import CompiledStep, Plan
from pipeline.ports import FlowGateway
from pipeline.result import RunResult, RunStatus, StepOutcome, StepStatus
from pipeline.retry import Random, backoff_delay
from pipeline.templating import to_text

Executor = Callable[[ActionInput, FlowGateway], Awaitable[ActionResult]]


class ClockPort(Protocol):
    """What the runner needs of time. Tests pass a fake whose sleeps return at once."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch (for run history)."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring durations."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class Clock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, :func:`asyncio.sleep`."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything a run touches outside itself."""

    gateway: FlowGateway
    ledger: Ledger
    clock: ClockPort = field(default_factory=Clock)
    execute: Executor = catalogue_execute  # pipeline.catalogue.execute
    # Backoff jitter only; not security-relevant, so the stdlib generator is right.
    rng: Random = field(default_factory=random.Random)


def render_inputs(step: CompiledStep, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render a step's inputs for its executor.

    Inputs that render ``None`` are omitted, except required ones: those are passed as ``None``
    so the executor can say which record is missing (e.g. a find that matched none). A number
    or boolean going into a ``string`` input becomes its text (``87`` → ``"87"``), since the
    catalogue's inputs are strings.
    """
    rendered = {}
    for name, value in step.inputs.items:
        result = value.render(context)
        spec = step.spec.inputs.get(name)
        if spec is not None and spec.type == "string" and isinstance(result, int | float):
            result = to_text(result)  # bool is an int: true/false
        if result is not None or (spec is not None and spec.required):
            rendered[name] = result
    return rendered


class _Run:
    """The state of one run: the context templates see, and the outcomes so far."""

    def __init__(
        self,
        plan: Plan,
        event: Event,
        ports: Ports,
        prior_attempts: int | Mapping[str, int],
        dry_run: bool,
    ) -> None:
        self.plan, self.event, self.ports, self.dry_run = plan, event, ports, dry_run
        self.key = run_key(event.id, plan.name, plan.version)
        self.steps: dict[str, Mapping[str, Any]] = {}
        self.context: dict[str, Any] = {"event": event.as_context(), "steps": self.steps}
        self.outcomes: list[StepOutcome] = []
        self.prior_attempts = prior_attempts

    def result(
        self, status: RunStatus, failed: StepOutcome | None = None, verdict: Verdict | None = None
    ) -> RunResult:
        published = self.plan.publish.render(self.context) if status is RunStatus.SUCCEEDED else {}
        return RunResult(
            flow=self.plan.name,
            version=self.plan.version,
            event_id=self.event.id,
            run_key=self.key,
            status=status,
            steps=tuple(self.outcomes),
            failed_step=failed.step_id if failed else None,
            reason=verdict.reason if verdict else None,
            error=failed.error if failed else None,
            retry_after=failed.error.retry_after if failed and failed.error else None,
            reason_code=verdict.code if verdict else None,
            published=published,
            dry_run=self.dry_run,
        )

    def outcome(self, step: CompiledStep, status: StepStatus, **details: Any) -> StepOutcome:
        outcome = StepOutcome(
            step_id=step.id,
            action=step.kind,
            object=step.object,
            status=status,
            idempotency_key=idempotency_key(self.event.id, self.plan.name, step.id),
            **details,
        )
        self.outcomes.append(outcome)
        return outcome

    async def reuse(self, step: CompiledStep, record: StepRecord) -> None:
        self.steps[step.id] = dict(record.outputs)
        self.outcome(
            step,
            StepStatus.REUSED,
            outputs=dict(record.outputs),
            attempt=record.attempts,
            salesforce_id=record.salesforce_id,
            recorded_status=record.status,
        )

    def prior(self, step: CompiledStep, *, reread: bool) -> int:
        """Attempts earlier deliveries spent on ``step``: a mapping says per step; a plain
        number belongs to the first step this run executes that the ledger does not hold (the
        one that failed before), not to a find read again."""
        if isinstance(self.prior_attempts, Mapping):
            return self.prior_attempts.get(step.id, 0)
        if reread:
            return 0
        prior, self.prior_attempts = self.prior_attempts, 0
        return prior

    async def record(self, step: CompiledStep, record: StepRecord) -> None:
        """Write to the ledger, except in a dry run, which must leave no trace."""
        if not self.dry_run:
            await self.ports.ledger.put(self.key, step.id, record)

    async def skip(self, step: CompiledStep) -> None:
        self.steps[step.id] = {}
        await self.record(step, StepRecord("skipped"))
        self.outcome(step, StepStatus.SKIPPED)

    def action_input(self, step: CompiledStep) -> ActionInput:
        key: str | None = idempotency_key(self.event.id, self.plan.name, step.id)
        if step.unique_by is not None:  # a business key; None if it renders empty
            value = to_text(step.unique_by.render(self.context)).strip()
            key = business_key(step.object, value) if value else None
        return ActionInput(
            kind=step.kind,
            object=step.object,
            inputs=render_inputs(step, self.context),
            extra_fields=step.fields.render(self.context),
            options=step.options.render(self.context),
            idempotency_key=key,
            unique=step.unique_by is not None,
            appends=step.appends.render(self.context),
            step=step.id,
        )

    def plan_write(self, step: CompiledStep) -> None:
        """Dry run: show the write that would be made; its outputs stay unknown (None)."""
        action = self.action_input(step)
        self.steps[step.id] = {}
        self.outcome(
            step,
            StepStatus.DRY_RUN,
            inputs=dict(action.inputs),
            fields=dict(action.extra_fields),
            appends=dict(action.appends),
        )

    async def execute(self, step: CompiledStep, *, reread: bool = False) -> Verdict | None:
        """Run one step with its in-process retries. Returns None on success or tolerated
        failure, else the verdict that ends the run.

        The step's policy is the only attempt budget: the gateway sends each call once (the
        transport re-authenticates on an expired session but retries nothing), so a step makes
        at most ``max_attempts_in_process`` calls per delivery and ``max_attempts`` in all."""
        clock, action = self.ports.clock, self.action_input(step)
        started, attempt, prior = clock.monotonic(), 0, self.prior(step, reread=reread)
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(step.policy.timeout_s):
                    result = await self.ports.execute(action, self.ports.gateway)
            except Exception as error:  # classified below: every failure has a destination
                verdict = classify(
                    error,
                    idempotent=step.idempotent,
                    policy=step.policy,
                    attempt_in_process=attempt,
                    total_attempts=prior + attempt,
                )
                if verdict.disposition is Disposition.RETRY:
                    await clock.sleep(backoff_delay(step.policy, attempt, self.ports.rng))
                    continue
                if verdict.disposition is Disposition.PAUSE:
                    attempt -= 1  # a throttled call is not the step's fault: not an attempt
                return await self.fail(
                    step, action, error, verdict, prior + attempt, clock.monotonic() - started
                )
            outputs = dict(result.outputs)
            self.steps[step.id] = outputs
            await self.record(
                step, StepRecord("succeeded", outputs, result.salesforce_id, prior + attempt)
            )
            self.outcome(
                step,
                StepStatus.SUCCEEDED,
                inputs=dict(action.inputs),
                fields=dict(action.extra_fields),
                appends=dict(action.appends),
                outputs=outputs,
                attempt=prior + attempt,
                salesforce_id=result.salesforce_id,
                matched=result.matched,
                duration_ms=_ms(clock.monotonic() - started),
            )
            return None

    async def fail(
        self,
        step: CompiledStep,
        action: ActionInput,
        error: Exception,
        verdict: Verdict,
        attempts: int,
        elapsed: float,
    ) -> Verdict | None:
        self.outcome(
            step,
            StepStatus.FAILED,
            inputs=dict(action.inputs),
            fields=dict(action.extra_fields),
            attempt=attempts,
            duration_ms=_ms(elapsed),
            error=error_info(error),
            reason=verdict.reason,
        )
        if verdict.disposition is Disposition.DEAD_LETTER and step.on_error == "continue":
            self.steps[step.id] = {}
            await self.record(step, StepRecord("failed", {}, None, attempts))
            return None
        return verdict


def _made(step: CompiledStep, record: StepRecord) -> bool:
    """A write the ledger says was made (or tolerated failing): reused when a run resumes.
    A read, and a decision to skip, are taken again on what the org holds now."""
    return step.writes and record.status != "skipped"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


_FINAL = {
    Disposition.RETRY_LATER: RunStatus.RETRY_LATER,
    Disposition.PAUSE: RunStatus.PAUSED,
    Disposition.DEAD_LETTER: RunStatus.DEAD_LETTER,
}


async def run(
    plan: Plan,
    event: Event,
    ports: Ports,
    *,
    resume_from: str | None = None,
    prior_attempts: int | Mapping[str, int] = 0,
    dry_run: bool = False,
    reread: bool = True,
) -> RunResult:
    """Run ``event`` through ``plan``.

    ``resume_from``: redrive at this step; every earlier step must be recorded in the ledger
    (its outputs are reused), else :class:`~pipeline.errors.ResumeError`. ``prior_attempts``:
    attempts earlier deliveries already spent (read from the retry topic's headers), so that
    ``max_attempts`` bounds all deliveries together: ``{step_id: n}`` (exact, e.g. from the
    ``resume_step`` header), or a number for the first step this run executes, which is the
    failed one as long as the ledger kept the steps before it.
    ``dry_run``: reads (finds) run, writes are only shown (status ``dry_run``, outputs unknown),
    and the ledger is read but never written, so a dry run changes nothing anywhere.
    ``reread``: a run the ledger holds in part runs its finds again and decides its skips again
    (a new delivery: a retry, a redrive, a redelivery); only writes are reused. False reuses
    every recorded step: the same delivery going on after a pause.
    """
    state = _Run(plan, event, ports, prior_attempts, dry_run)
    if resume_from is not None and plan.step(resume_from) is None:
        raise ResumeError(
            f"flow {plan.name!r} has no step {resume_from!r} to resume at "
            f"(steps: {', '.join(plan.step_ids)})"
        )
    records = {step.id: await ports.ledger.get(state.key, step.id) for step in plan.steps}
    finished = None not in records.values()
    resuming = resume_from is not None
    for step in plan.steps:
        resuming = resuming and step.id != resume_from
        record = records[step.id]
        if record is not None and (finished or not reread or _made(step, record)):
            await state.reuse(step, record)
            continue
        if resuming and record is None:
            raise ResumeError(
                f"cannot resume {plan.name!r} at {resume_from!r}: the ledger has "
                f"no record of the earlier step {step.id!r}"
            )
        if step.when is not None and not step.when.evaluate(state.context):
            await state.skip(step)
            continue
        if dry_run and step.writes:
            state.plan_write(step)
            continue
        verdict = await state.execute(step, reread=record is not None)
        if verdict is not None:
            return state.result(_FINAL[verdict.disposition], state.outcomes[-1], verdict)
    ran = [o for o in state.outcomes if (o.recorded_status or o.status) != "skipped"]
    return state.result(RunStatus.SUCCEEDED if ran else RunStatus.SKIPPED)
