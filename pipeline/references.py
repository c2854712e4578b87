"""What the paths in a flow may read, and their types: the event model and earlier steps.

``event.*`` paths are checked against the :class:`~pipeline.events.Event` dataclasses, read once
at import (so a field added to the event is known to flows at once); ``event.ticket.*`` and
``event.attributes.*`` are free-form mappings. ``steps.<id>.<output>`` must name a step that runs
*before* the reader and one of its catalogue outputs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from pipeline.actions import ActionSpec, ValueType
from pipeline.events import Event

EventSchema = Mapping[str, "ValueType | EventSchema"]


def article(kind: str) -> str:
    """``an id``, ``a number``: type names read as English in messages."""
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _schema_of(cls: type) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            schema[item.name] = _schema_of(hint)
        elif hint is str or (
            typing.get_origin(hint) in (typing.Union, types.UnionType)
            and str in typing.get_args(hint)
        ):
            schema[item.name] = "string"  # str, str | None
        else:
            schema[item.name] = "any"  # ticket, attributes: free-form mappings
    return schema


EVENT_SCHEMA: EventSchema = _schema_of(Event)


def event_path_type(path: tuple[str, ...]) -> tuple[ValueType | None, str | None]:
    """The type at ``event.<path>``, or an error message when the path does not exist."""
    node: Any = EVENT_SCHEMA
    for depth, segment in enumerate(path):
        if node == "any":
            return "any", None
        if not isinstance(node, Mapping):
            where = "event." + ".".join(path[:depth])
            return None, f"{where} is {article(node)}; it has no field {segment!r}"
        if segment not in node:
            where = "event." + ".".join(path[:depth]) if depth else "event"
            return None, f"unknown event path 'event.{'.'.join(path)}' ({where} has: " + (
                ", ".join(node) + ")"
            )
        node = node[segment]
    return (node if isinstance(node, str) else "object"), None  # type: ignore[return-value]


class Scope:
    """What the paths at one place of a flow may read: the event, and earlier steps."""

    def __init__(
        self,
        earlier: Mapping[str, ActionSpec | None],
        later: list[str],
        current: str | None,
        *,
        trigger: bool = False,
    ) -> None:
        self.earlier, self.later, self.current, self.trigger = earlier, later, current, trigger

    def path_type(self, path: tuple[str, ...]) -> tuple[ValueType | None, str | None]:
        root, rest = path[0], path[1:]
        if root == "event":
            return event_path_type(rest)
        if root != "steps":
            return None, f"unknown path root {root!r}: paths start with 'event.' or 'steps.'"
        if self.trigger:
            return None, "a trigger condition can read only event.*: no step has run yet"
        if not rest:
            return None, "refer to one step's output: steps.<step id>.<output>"
        step_id = rest[0]
        if step_id == self.current:
            return None, f"step {step_id!r} cannot read its own outputs"
        if step_id in self.later:
            return None, (
                f"step {step_id!r} runs later; a step can read only the outputs of steps before it"
            )
        if step_id not in self.earlier:
            known = ", ".join(self.earlier) or "none"
            return None, f"unknown step {step_id!r} (known earlier steps: {known})"
        spec = self.earlier[step_id]
        if spec is None:
            return "any", None  # the step itself is in error; reported there
        if len(rest) < 2:
            return None, (
                f"refer to an output of step {step_id!r}: steps.{step_id}.<output> "
                f"(outputs: {', '.join(spec.outputs) or 'none'})"
            )
        output = rest[1]
        if output not in spec.outputs:
            known = ", ".join(spec.outputs) or "none"
            return None, (
                f"step {step_id!r} ({spec.kind} on {spec.object}) has no output "
                f"{output!r} (outputs: {known})"
            )
        kind = spec.outputs[output].type
        if len(rest) > 2 and kind not in ("object", "list", "any"):
            return None, f"steps.{step_id}.{output} is {article(kind)}; it has no field {rest[2]!r}"
        return (kind if len(rest) == 2 else "any"), None
