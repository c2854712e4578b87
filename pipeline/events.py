"""The one internal event model that every input format decodes into.

Zendesk webhook payloads and the generic envelope (see :mod:`topics.codecs`) both become an
:class:`Event`. Flows read it through templates such as ``{{ event.requester.email }}``, so the
attribute names here are part of the flow language and are documented in ``docs/events.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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

        What :func:`dataclasses.asdict` gives, built without its deep copies: containers are
        new, leaves (strings, numbers) are shared. Every event is turned into a context twice
        (to match flows, then to run one), so this is on the hot path.
        """
        return _record(self)


_LEAVES = (str, int, float, bool, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def _record(value: Any) -> dict[str, Any]:
    """A dataclass instance as a dict of plain data."""
    names = _FIELDS.get(type(value))
    if names is None:
        names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if hasattr(value, "__dataclass_fields__"):
        return _record(value)
    return value  # anything else is passed as it is
