"""Reading and checking a step's ``options`` for the keys the catalogue defines.

``validate_options`` is what the flow validator calls at load time; the executors call the
same readers, so a bad value fails the same way whether or not the flow was validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

from pipeline.catalogue.errors import InvalidInput, UnknownAction
from pipeline.catalogue.specs import CONVERT, CREATE, FIND, KINDS

NoMatchPolicy = Literal["empty", "fail"]
ManyMatchesPolicy = Literal["first", "fail"]

# A Salesforce API field name: letters, digits and underscores, starting with a letter
# (custom fields end in __c). Anything else cannot be a field and may be an injection attempt.
API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def is_api_name(name: object) -> bool:
    return isinstance(name, str) and API_NAME.match(name) is not None


def _choice(options: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = options.get(key, allowed[0])
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise InvalidInput(f"option {key} must be one of {choices}, not {value!r}")
    return cast(str, value)


def on_no_match(options: Mapping[str, Any]) -> NoMatchPolicy:
    """``"empty"`` (default: outputs are null, matched=False) or ``"fail"`` (NoMatch)."""
    return cast(NoMatchPolicy, _choice(options, "on_no_match", ("empty", "fail")))


def on_many_matches(options: Mapping[str, Any]) -> ManyMatchesPolicy:
    """``"first"`` (default: the oldest record) or ``"fail"`` (AmbiguousMatch)."""
    return cast(ManyMatchesPolicy, _choice(options, "on_many_matches", ("first", "fail")))


def external_id_field(options: Mapping[str, Any]) -> str | None:
    value = options.get("external_id_field")
    if value is None:
        return None
    if not is_api_name(value):
        raise InvalidInput(
            f"option external_id_field must be a Salesforce field name, not {value!r}"
        )
    return cast(str, value)


def defaults(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """Per-step field defaults, by Salesforce API name; a null value removes a built-in one."""
    value = options.get("defaults", {})
    if not isinstance(value, Mapping):
        raise InvalidInput(f"option defaults must be a mapping of field -> value, not {value!r}")
    bad = [key for key in value if not is_api_name(key)]
    if bad:
        raise InvalidInput(f"option defaults has keys that are not Salesforce field names: {bad}")
    return cast(Mapping[str, Any], value)


def today(options: Mapping[str, Any], given: date | None) -> date:
    """The date relative defaults count from: the caller's, ``options.today``, or UTC today."""
    if given is not None:
        return given
    value = options.get("today")
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(f"option today must be a date (YYYY-MM-DD), not {value!r}")


def converted_status(options: Mapping[str, Any]) -> str | None:
    value = options.get("converted_status")
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise InvalidInput(f"option converted_status must be a LeadStatus value, not {value!r}")
    return value


def validate_options(kind: str, options: Mapping[str, Any]) -> None:
    """Raise InvalidInput when an option the catalogue reads for ``kind`` has a bad value.

    Keys the catalogue does not read are left alone (``CATALOGUE_OPTIONS`` lists the ones it
    does), since the runner may keep its own per-step settings in the same mapping.
    """
    if kind not in KINDS:
        raise UnknownAction(f"unknown action {kind!r}; known: {', '.join(KINDS)}")
    if kind == CREATE:
        external_id_field(options)
        defaults(options)
        today(options, None)
    elif kind == FIND:
        on_no_match(options)
        on_many_matches(options)
    elif kind == CONVERT:
        converted_status(options)
