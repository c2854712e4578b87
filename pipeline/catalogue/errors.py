"""Why a catalogue action refused to run. Every one is permanent: retrying cannot help.

CatalogueError                  retriable = False for the whole tree
├── UnknownAction               the step kind is not one of KINDS
├── UnsupportedObject           the kind exists but not for that object (delete on account)
├── InvalidInput                an input, extra field or option has the wrong name, type or value
├── MissingInput                a field Salesforce requires has no input, extra field or default
├── NoMatch                     find with on_no_match="fail" matched nothing, or a step that
│                               needs a record got an id that resolved to nothing
└── AmbiguousMatch              find with on_many_matches="fail" matched more than one record

Failures Salesforce reports come from the gateway as :class:`~pipeline.ports.GatewayError`
and pass through the catalogue unchanged: the engine classifies those.
"""

from __future__ import annotations

from typing import ClassVar


class CatalogueError(Exception):
    """An action could not run as written. The dead-letter record carries ``str(error)``."""

    retriable: ClassVar[bool] = False


class UnknownAction(CatalogueError):
    """The step kind is not a catalogue action."""


class UnsupportedObject(CatalogueError):
    """The action exists but not for this object (the seed deletes only leads and cases)."""


class InvalidInput(CatalogueError):
    """An input, extra field or option the action cannot accept, named in the message."""


class MissingInput(CatalogueError):
    """A field Salesforce requires has neither an input, an extra field nor a default."""


class NoMatch(CatalogueError):
    """No record to act on: a find matched nothing (on_no_match="fail"), or an id was empty."""


class AmbiguousMatch(CatalogueError):
    """A find matched more than one record and the step asked to fail on that."""
