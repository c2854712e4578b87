"""The one internal event model that every input format decodes into.

Zendesk webhook payloads and the generic envelope (see :mod:`topics.codecs`) both become an
:class:`Event`. Flows read it through templates such as ``{{ event.requester.email }}``, so the
attribute names here are part of the flow language and are documented in ``docs/events.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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
            "requester": asdict(self.requester),
            "organization": asdict(self.organization),
            "interaction": asdict(self.interaction),
            "attributes": dict(self.attributes),
        }
