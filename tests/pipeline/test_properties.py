"""Properties over many generated cases: conditions never raise, and redelivery never writes
twice, whatever mix of failures Salesforce returns."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from pipeline.actions import ActionInput, ActionResult
from pipeline.conditions import OPERATORS, parse_condition
from pipeline.errors import ConditionSyntaxError
from pipeline.ledger import InMemoryLedger
from pipeline.loader import compile_text
from pipeline.result import RunStatus
from pipeline.runner import run
from tests.pipeline.flow_fakes import (
    CATALOGUE,
    Permanent,
    ScriptedExecutor,
    Throttled,
    Transient,
    make_event,
    make_ports,
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
# Literal mappings are not operands ({path: …} is the only mapping form).
templates = st.sampled_from(["{{ x }}", "{{ x.y }}", "{{ x.0 | lower }}", "a {{ x }}"])
operands = scalars | st.lists(scalars, max_size=3) | templates | st.just({"path": "x.y"})


def conditions() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.builds(
            lambda op, a, b: {op: [a, b]},
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "contains", "in"]),
            operands,
            operands,
        ),
        st.just({"exists": "x.y"}),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda items: {"and": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda items: {"or": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda item: {"not": item}, inner),
        ),
        max_leaves=6,
    )


@given(conditions(), values)
def test_a_parsed_condition_evaluates_to_a_bool_on_any_data(condition: Any, x: Any) -> None:
    """Whatever the data, evaluating a valid condition gives True or False and never raises."""
    assert parse_condition(condition).evaluate({"x": x}) in (True, False)


@given(st.dictionaries(st.sampled_from([*OPERATORS, "nope"]), values, max_size=2))
def test_parsing_garbage_fails_only_with_a_syntax_error(raw: Any) -> None:
    """Arbitrary input either parses or raises ConditionSyntaxError, nothing else."""
    with contextlib.suppress(ConditionSyntaxError):
        parse_condition(raw)


FLOW = compile_text(
    """
name: props
version: 1
steps:
  - id: find
    action: salesforce.find_record
    object: contact
    inputs: {email: "{{ event.requester.email }}"}
  - id: create
    when: {not: {exists: steps.find.id}}
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}"}
    policy: {max_attempts: 4, max_attempts_in_process: 2}
  - id: note
    action: salesforce.update_record
    object: contact
    inputs: {object_id: "{{ steps.create.id }}", description: noted}
    policy: {max_attempts: 4, max_attempts_in_process: 2}
""",
    catalogue=CATALOGUE,
    external_id_fields={"lead": "Key__c"},
)

failures = st.sampled_from(["ok", "transient", "ambiguous", "permanent", "throttle"])


@settings(max_examples=200, deadline=None)
@given(st.lists(failures, min_size=0, max_size=12))
def test_redelivery_never_writes_twice(script: list[str]) -> None:
    """Redeliver an event until it settles: each write succeeds at most once (a find runs again
    when a run resumes), and once the run has succeeded, a redelivery makes no call at all."""
    replies = iter(script)
    succeeded: dict[str, int] = {}

    def reply(action: ActionInput) -> ActionResult:
        kind = next(replies, "ok")
        if kind == "transient":
            raise Transient("503")
        if kind == "ambiguous":
            raise Transient("reset", ambiguous=True)
        if kind == "permanent":
            raise Permanent("no")
        if kind == "throttle":
            raise Throttled("limit")
        succeeded[action.kind] = succeeded.get(action.kind, 0) + 1
        found = action.kind != "salesforce.find_record"
        return ActionResult(outputs={"id": "X" if found else None})

    executor = ScriptedExecutor()
    for kind, obj in (
        ("salesforce.find_record", "contact"),
        ("salesforce.create_record", "lead"),
        ("salesforce.update_record", "contact"),
    ):
        executor.on(kind, obj, reply)
    ledger = InMemoryLedger()

    async def settle() -> RunStatus:
        status, prior = RunStatus.RETRY_LATER, 0
        for _ in range(20):
            result = await run(
                FLOW, make_event(), make_ports(executor, ledger), prior_attempts=prior
            )
            status = result.status
            if status in (RunStatus.SUCCEEDED, RunStatus.DEAD_LETTER):
                return status
            failed = result.step(result.failed_step or "")
            prior = failed.attempt if failed is not None else 0
        return status

    status = asyncio.run(settle())
    event(f"settled as {status}")
    writes = {k: n for k, n in succeeded.items() if k != "salesforce.find_record"}
    assert all(count <= 1 for count in writes.values()), succeeded
    if status is RunStatus.SUCCEEDED:
        calls = len(executor.calls)
        again = asyncio.run(run(FLOW, make_event(), make_ports(executor, ledger)))
        assert again.status is RunStatus.SUCCEEDED
        assert len(executor.calls) == calls
