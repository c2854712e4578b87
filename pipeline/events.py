"""The one internal event model that every input format decodes into.

Zendesk webhook payloads and the generic envelope (see :mod:`topics.codecs`) both become an
:class:`Event`. Flows read it through templates such as ``{{ event.requester.email }}``, so the
attribute names here are part of the flow language and are documented in ``docs/events.md``.

Event data nests at most :data:`MAX_DEPTH` levels: the decoders reject deeper input
(``too_deep``), so nothing downstream has to recurse further. :func:`nesting_depth` measures
without recursing, so it is safe on any decoded JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: How many levels of JSON objects and arrays an event may nest, the top-level object counting
#: as one. Helpdesk events need a handful; 64 leaves room for free-form ``attributes`` while
#: keeping every recursive walk (templates, redaction, JSON encoding) far from Python's limits.
MAX_DEPTH = 64


def nesting_depth(value: object, *, stop_above: int | None = None) -> int:
    """Levels of dicts, lists and tuples in ``value`` (a scalar is 0, ``{}`` is 1).

    Iterative, so any depth is measured without recursion; with ``stop_above`` the walk ends
    as soon as that depth is exceeded (and returns ``stop_above + 1``), so a huge document
    costs no more than needed to prove it is too deep.
    """
    if not isinstance(value, dict | list | tuple):
        return 0
    deepest = 0
    # Only containers are stacked: most of an event's values are scalars, seen once each.
    stack: list[tuple[Iterable[object], int]] = [(_children(value), 1)]
    while stack:
        children, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                return stop_above + 1
        stack.extend(
            (_children(child), depth + 1)
            for child in children
            if isinstance(child, dict | list | tuple)
        )
    return deepest


def _children(node: dict[Any, object] | list[object] | tuple[object, ...]) -> Iterable[object]:
    return node.values() if isinstance(node, dict) else node


@dataclass(frozen=True, slots=True)
class Person:
    """Whoever the event is about: a ticket requester, a caller, a chat visitor."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Organization:
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """One exchange with the customer: a comment, a call, a chat."""

    channel: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A helpdesk event, whatever system sent it.

    ``id`` is the idempotency anchor: every effect of the event is keyed by it, so a
    redelivered or replayed event is recognised as the same event.
    """

    id: str
    type: str  # normalised, e.g. "ticket.created", "ticket.comment_added", "interaction.call"
    ticket_id: str  # the ordering key: events of one ticket run in arrival order
    source: str = "generic"  # "zendesk" or "generic"
    time: str | None = None  # RFC 3339, as sent
    ticket: Mapping[str, Any] = field(default_factory=dict)  # subject, status, priority, tags, ...
    requester: Person = field(default_factory=Person)
    organization: Organization = field(default_factory=Organization)
    interaction: Interaction = field(default_factory=Interaction)
    attributes: Mapping[str, Any] = field(default_factory=dict)  # free-form, e.g. ai_lead_score

    def as_context(self) -> dict[str, Any]:
        """The event as plain data, the shape templates and conditions see as ``event``.

        Built field by field rather than with :func:`dataclasses.asdict`, which deep-copies
        ``ticket`` and ``attributes`` recursively: those are read, never changed, so a shallow
        copy is enough and no depth of producer data can exhaust the stack here.
        """
        return {
            "id": self.id,
            "type": self.type,
            "ticket_id": self.ticket_id,
            "source": self.source,
            "time": self.time,
            "ticket": dict(self.ticket),
            "requester": _plain(self.requester),
            "organization": _plain(self.organization),
            "interaction": _plain(self.interaction),
            "attributes": dict(self.attributes),
        }


_FIELDS = {
    kind: tuple(f.name for f in fields(kind)) for kind in (Person, Organization, Interaction)
}


def _plain(part: Person | Organization | Interaction) -> dict[str, str | None]:
    """A part of the event as a dict (its fields are strings: nothing to copy deeply)."""
    return {name: getattr(part, name) for name in _FIELDS[type(part)]}
