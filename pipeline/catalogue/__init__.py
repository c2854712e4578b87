"""The Salesforce action catalogue: the seed's five actions on its six objects, as data.

``ACTIONS`` holds one :class:`~pipeline.actions.ActionSpec` per supported (kind, object) pair,
which the flow validator reads; :func:`execute` runs one :class:`~pipeline.actions.ActionInput`
against a :class:`~pipeline.ports.SalesforceGateway`. ``docs/actions.md`` documents every field
mapping, default and output.

Errors (all permanent, ``retriable = False``; gateway errors pass through unchanged)::

    CatalogueError
    ├── UnknownAction        the step kind is not one of KINDS
    ├── UnsupportedObject    the kind exists but not for that object (delete on account)
    ├── InvalidInput         an input, extra field or option with a wrong name, type or value
    ├── MissingInput         a required Salesforce field has no input, extra field or default
    ├── NoMatch              find matched nothing (on_no_match="fail"), or an id input is empty
    └── AmbiguousMatch       find matched several records (on_many_matches="fail")
"""

from pipeline.catalogue.errors import (
    AmbiguousMatch,
    CatalogueError,
    InvalidInput,
    MissingInput,
    NoMatch,
    UnknownAction,
    UnsupportedObject,
)
from pipeline.catalogue.executors import execute
from pipeline.catalogue.options import validate_options
from pipeline.catalogue.specs import (
    ACTIONS,
    CATALOGUE_OPTIONS,
    CONVERT,
    CREATE,
    DELETE,
    FIND,
    KINDS,
    UPDATE,
    get_action,
    objects_for,
)

__all__ = [
    "ACTIONS",
    "CATALOGUE_OPTIONS",
    "CONVERT",
    "CREATE",
    "DELETE",
    "FIND",
    "KINDS",
    "UPDATE",
    "AmbiguousMatch",
    "CatalogueError",
    "InvalidInput",
    "MissingInput",
    "NoMatch",
    "UnknownAction",
    "UnsupportedObject",
    "execute",
    "get_action",
    "objects_for",
    "validate_options",
]
