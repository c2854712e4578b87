"""What a flow means, checked at load time against the catalogue and the event model.

:func:`check_flow` takes a schema-valid :class:`~pipeline.flows.FlowDefinition` and returns every
problem it finds (not just the first), each naming the path inside the file:

- actions and objects: unknown action, unknown object, an object the action does not support
  (``salesforce.delete_record`` on ``account``); ``object`` may be left out only when the
  action supports exactly one object;
- inputs: unknown inputs, missing required inputs (the catalogue's ``FieldSpec.required``),
  type mismatches where the types are known (a ``number`` output into an ``id`` input);
- templates and conditions: syntax, and every path they read. ``event.*`` paths are checked
  against the :class:`~pipeline.events.Event` dataclasses (``event.ticket.*`` and
  ``event.attributes.*`` are free-form); ``steps.<id>.<output>`` must name an *earlier* step
  and one of its catalogue outputs. Since a step can only read steps before it, a flow is a
  straight line and a reference cycle cannot be written; self-references are reported as such;
- duplicate step ids; trigger conditions that read ``steps`` (no step has run yet); event
  types that cannot match (``tickets.created``);
- ``fields`` on actions that take none, field names that are not API names, unknown options and
  bad option values (the catalogue's own check);
- ``append`` anywhere but on ``salesforce.update_record``, appended fields that are not API
  names or that the step also sets; ``unique_by`` anywhere but on ``salesforce.create_record``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipeline.actions import OBJECTS, ActionSpec, ValueType
from pipeline.catalogue import ACTIONS, CATALOGUE_OPTIONS, validate_options
from pipeline.conditions import parse_condition
from pipeline.errors import FlowError, FlowSyntaxError, join_path
from pipeline.flows import FlowDefinition, StepDefinition
from pipeline.references import Scope, article
from pipeline.templating import Constant, Expr, ListOf, MapOf, Template, Value, compile_value

Actions = Mapping[tuple[str, str], ActionSpec]
OptionsCheck = Callable[[str, Mapping[str, Any]], None]

_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_CREATE, _UPDATE = "salesforce.create_record", "salesforce.update_record"
_FIELD_KINDS = (_CREATE, _UPDATE)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the validator needs of the action catalogue; tests may pass a small fake.

    ``options`` lists the option keys each kind reads (``None``: options are not checked);
    ``check_options`` raises on a bad option value (called with the constant options only).
    """

    actions: Actions
    options: Mapping[str, frozenset[str]] | None = None
    check_options: OptionsCheck | None = None


def default_catalogue() -> Catalogue:
    """The real catalogue, :mod:`pipeline.catalogue`."""
    return Catalogue(ACTIONS, CATALOGUE_OPTIONS, validate_options)


def check_flow(
    flow: FlowDefinition,
    catalogue: Catalogue | None = None,
    *,
    file: str = "<flow>",
    lines: Callable[[str], int | None] | None = None,
) -> list[FlowError]:
    """Every problem of one schema-valid flow; ``lines`` maps a path to its line, if known."""
    return FlowChecker(file, catalogue or default_catalogue(), lines).check(flow)


# What a source type may flow into, per target type ("any" on either side always fits).
_ACCEPTS: Mapping[str, frozenset[str]] = {
    "id": frozenset({"id", "string"}),
    "string": frozenset({"string", "id", "number", "boolean", "date"}),
    "number": frozenset({"number", "string"}),
    "boolean": frozenset({"boolean", "string"}),
    "date": frozenset({"date", "string"}),
    "object": frozenset({"object"}),
    "list": frozenset({"list"}),
}

# Event types are `ticket.<name>` or `interaction.<name>` (docs/events.md); patterns may use * ? [].
_EVENT_TYPE = re.compile(r"(ticket|interaction)\.[a-z0-9_.*?\[\]-]+|\*")


class FlowChecker:
    """Collects the errors of one flow file."""

    def __init__(
        self, file: str, catalogue: Catalogue, lines: Callable[[str], int | None] | None = None
    ) -> None:
        self.file, self.catalogue, self.actions = file, catalogue, catalogue.actions
        self.lines: Callable[[str], int | None] = lines or (lambda _path: None)
        self.errors: list[FlowError] = []
        self.kinds = sorted({kind for kind, _ in self.actions})

    def error(self, path: str, message: str) -> None:
        self.errors.append(FlowError(self.file, path, message, self.lines(path)))

    def check(self, flow: FlowDefinition) -> list[FlowError]:
        for index, pattern in enumerate(flow.trigger.event_types):
            if not _EVENT_TYPE.fullmatch(pattern):
                self.error(
                    f"trigger.event_types[{index}]",
                    f"{pattern!r} is not an event type: "
                    "types read ticket.<name> or interaction.<name> (patterns: ticket.*)",
                )
        if flow.trigger.when is not None:
            self.condition("trigger.when", flow.trigger.when, Scope({}, [], None, trigger=True))
        specs: dict[str, ActionSpec | None] = {}
        order = [step.id for step in flow.steps]
        for index, step in enumerate(flow.steps):
            where = f"steps[{index}]"
            if step.id in specs:
                first = order.index(step.id)
                self.error(
                    f"{where}.id", f"duplicate step id {step.id!r} (first at steps[{first}])"
                )
                continue
            spec = self.spec(where, step)
            scope = Scope(dict(specs), order[index + 1 :], step.id)
            self.step(where, step, spec, scope)
            specs[step.id] = spec
        publish = Scope(specs, [], None)
        for key, raw in flow.publish.items():
            self.value(f"publish.{key}", raw, publish, None)
        return self.errors

    def spec(self, where: str, step: StepDefinition) -> ActionSpec | None:
        if step.action not in self.kinds:
            self.error(
                f"{where}.action",
                f"unknown action {step.action!r} (known: {', '.join(self.kinds)})",
            )
            return None
        supported = sorted(obj for kind, obj in self.actions if kind == step.action)
        obj = step.object
        if obj is None:
            if len(supported) == 1:
                return self.actions[(step.action, supported[0])]
            self.error(
                where, f"missing 'object' for {step.action} (one of: {', '.join(supported)})"
            )
            return None
        if obj not in OBJECTS:
            self.error(f"{where}.object", f"unknown object {obj!r} (known: {', '.join(OBJECTS)})")
            return None
        if (step.action, obj) not in self.actions:
            self.error(
                f"{where}.object",
                f"{step.action} does not support object {obj!r} "
                f"(supported: {', '.join(supported)})",
            )
            return None
        return self.actions[(step.action, obj)]

    def step(self, where: str, step: StepDefinition, spec: ActionSpec | None, scope: Scope) -> None:
        if step.when is not None:
            self.condition(f"{where}.when", step.when, scope)
        if spec is not None:
            label = f"{spec.kind} on {spec.object}"
            for name in step.inputs:
                if name not in spec.inputs:
                    known = ", ".join(spec.inputs) or "none"
                    self.error(
                        f"{where}.inputs.{name}",
                        f"unknown input {name!r} for {label} (known: {known})",
                    )
            for name, wanted in spec.inputs.items():
                if wanted.required and name not in step.inputs:
                    self.error(f"{where}.inputs", f"missing required input {name!r} for {label}")
        for name, raw in step.inputs.items():
            field = spec.inputs.get(name) if spec is not None else None
            self.dates(f"{where}.inputs.{name}", raw)
            self.value(f"{where}.inputs.{name}", raw, scope, field.type if field else None)
        if step.fields and spec is not None and spec.kind not in _FIELD_KINDS:
            self.error(
                f"{where}.fields",
                f"{spec.kind} takes no extra fields (only {' and '.join(_FIELD_KINDS)} do)",
            )
        for name, raw in step.fields.items():
            if not _API_NAME.match(name) or name.lower() == "id":
                self.error(
                    f"{where}.fields.{name}",
                    f"{name!r} is not a Salesforce field API name one may set",
                )
            self.value(f"{where}.fields.{name}", raw, scope, None)
        self.append(where, step, spec, scope)
        if step.unique_by is not None:
            if spec is not None and spec.kind != _CREATE:
                self.error(f"{where}.unique_by", f"unique_by is for {_CREATE} only")
            self.value(f"{where}.unique_by", step.unique_by, scope, "string")
        for name, raw in step.options.items():
            self.value(f"{where}.options.{name}", raw, scope, None)
        if spec is not None:
            self.options(where, spec.kind, step.options)

    def append(
        self, where: str, step: StepDefinition, spec: ActionSpec | None, scope: Scope
    ) -> None:
        if step.append and spec is not None and spec.kind != _UPDATE:
            self.error(f"{where}.append", f"append is for {_UPDATE} only")
        for name, raw in step.append.items():
            path = f"{where}.append.{name}"
            if not _API_NAME.match(name) or name.lower() == "id":
                self.error(path, f"{name!r} is not a Salesforce field API name one may set")
            set_too = name in step.fields or (
                name.lower() == "description" and "description" in step.inputs
            )
            if set_too:
                self.error(path, f"{name} is both set and appended to: the step must do one")
            self.dates(path, raw)
            self.value(path, raw, scope, "string")

    def options(self, where: str, kind: str, options: Mapping[str, Any]) -> None:
        known = self.catalogue.options.get(kind) if self.catalogue.options is not None else None
        if known is not None:
            for name in options:
                if name not in known:
                    self.error(
                        f"{where}.options.{name}",
                        f"unknown option {name!r} for {kind} "
                        f"(known: {', '.join(sorted(known)) or 'none'})",
                    )
        constant = {k: v for k, v in options.items() if "{{" not in str(v)}
        if self.catalogue.check_options is not None:
            try:
                self.catalogue.check_options(kind, constant)
            except Exception as exc:  # the catalogue's own error, reported as is
                self.error(f"{where}.options", str(exc))

    def dates(self, where: str, raw: Any) -> None:
        """YAML reads an unquoted 2026-01-01 as a date, which no input or comparison expects."""
        if isinstance(raw, date):
            self.error(
                where,
                f"YAML read {raw.isoformat()} as a date: quote it "
                f"('{raw.isoformat()}') to use it as text",
            )
        elif isinstance(raw, Mapping):
            for key, value in raw.items():
                self.dates(join_path(where, str(key)), value)
        elif isinstance(raw, list):
            for index, value in enumerate(raw):
                self.dates(join_path(where, f"[{index}]"), value)

    def condition(self, where: str, raw: Any, scope: Scope) -> None:
        self.dates(where, raw)
        try:
            condition = parse_condition(raw)
        except FlowSyntaxError as exc:
            self.error(join_path(where, exc.path), exc.message)
            return
        for expr in condition.expressions():
            self.expr(where, expr, scope)

    def value(self, where: str, raw: Any, scope: Scope, target: ValueType | None) -> None:
        try:
            compiled = compile_value(raw)
        except FlowSyntaxError as exc:
            self.error(join_path(where, exc.path), exc.message)
            return
        source: ValueType | None = None
        for expr in compiled.expressions():
            source = self.expr(where, expr, scope)
        if target is None or target == "any":
            return
        if isinstance(compiled, Template) and compiled.single is not None:
            single = compiled.single
            source = "string" if single.yields_string else source
        else:
            source = _literal_type(compiled)
        if source is not None and source != "any" and source not in _ACCEPTS.get(target, {source}):
            self.error(
                where,
                f"type mismatch: this input takes {article(target)}, the value is "
                f"{article(source)}",
            )

    def expr(self, where: str, expr: Expr, scope: Scope) -> ValueType | None:
        kind, message = scope.path_type(expr.path)
        if message is not None:
            self.error(where, message)
        return kind


def _literal_type(value: Value) -> ValueType | None:
    if isinstance(value, Template):
        return "string"  # mixed text
    if isinstance(value, ListOf):
        return "list"
    if isinstance(value, MapOf):
        return "object"
    if isinstance(value, Constant):
        raw = value.value
        if isinstance(raw, bool):
            return "boolean"
        if isinstance(raw, int | float):
            return "number"
        if isinstance(raw, str):
            return "string"
    return None
