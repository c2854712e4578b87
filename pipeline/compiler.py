"""Validated definition → immutable :class:`~pipeline.plan.Plan`.

The compiler trusts :mod:`pipeline.validate` to have run: it parses every template and condition
(``append`` texts and ``unique_by`` keys too) once, looks each step's spec up in the catalogue,
fixes its retry policy, adds the object's external-id field to the options of its create steps
(from the ``external_id_fields`` setting, unless the step sets ``options.external_id_field``
itself), and decides whether the step is idempotent. Nothing in a plan is parsed or looked up
again at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from pipeline.actions import ActionSpec
from pipeline.conditions import parse_condition
from pipeline.flows import FlowDefinition, StepDefinition
from pipeline.plan import CREATE, CompiledStep, Plan, Trigger, is_idempotent
from pipeline.templating import MapOf, compile_value

Actions = Mapping[tuple[str, str], ActionSpec]

EXTERNAL_ID_OPTION = "external_id_field"


def resolve_spec(actions: Actions, step: StepDefinition) -> ActionSpec:
    """The step's spec; ``object`` may be omitted when the action supports a single object."""
    if step.object is not None:
        return actions[(step.action, step.object)]
    (only,) = [spec for (kind, _), spec in actions.items() if kind == step.action]
    return only


def _mapping(raw: Mapping[str, object]) -> MapOf:
    compiled = compile_value(dict(raw))
    assert isinstance(compiled, MapOf)  # a dict always compiles to a MapOf
    return compiled


def compile_step(
    flow: FlowDefinition,
    step: StepDefinition,
    actions: Actions,
    external_id_fields: Mapping[str, str],
) -> CompiledStep:
    spec = resolve_spec(actions, step)
    options = dict(step.options)
    configured = external_id_fields.get(spec.object) if spec.kind == CREATE else None
    if configured is not None and EXTERNAL_ID_OPTION not in options:
        options[EXTERNAL_ID_OPTION] = configured
    external_id = options.get(EXTERNAL_ID_OPTION)
    compiled_options = _mapping(options)
    return CompiledStep(
        id=step.id,
        kind=spec.kind,
        object=spec.object,
        spec=spec,
        inputs=_mapping(step.inputs),
        fields=_mapping(step.fields),
        options=compiled_options,
        appends=_mapping(step.append),
        unique_by=compile_value(step.unique_by) if step.unique_by is not None else None,
        when=parse_condition(step.when) if step.when is not None else None,
        policy=flow.policy_of(step),
        on_error=step.on_error,
        idempotent=is_idempotent(
            spec.kind, spec.writes, str(external_id) if external_id is not None else None
        ),
    )


def compile_flow(
    flow: FlowDefinition,
    actions: Actions,
    *,
    source: str = "",
    external_id_fields: Mapping[str, str] | None = None,
) -> Plan:
    """Compile one validated flow. ``external_id_fields`` maps an object (``lead``) to the API
    name of its external-id field (``Actionflows_Key__c``), which makes creates upserts."""
    fields = external_id_fields or {}
    trigger = Trigger(
        topics=frozenset(flow.trigger.topics),
        event_types=tuple(flow.trigger.event_types),
        when=parse_condition(flow.trigger.when) if flow.trigger.when is not None else None,
    )
    return Plan(
        name=flow.name,
        version=flow.version,
        enabled=flow.enabled,
        trigger=trigger,
        steps=tuple(compile_step(flow, step, actions, fields) for step in flow.steps),
        publish=_mapping(flow.publish),
        source=source,
        description=flow.description,
        digest=definition_digest(flow),
    )


def definition_digest(flow: FlowDefinition) -> str:
    """A short fingerprint of what the flow says (key order and YAML formatting aside)."""
    canonical = json.dumps(flow.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
