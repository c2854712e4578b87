"""Field-level validation of a create or update body against the object's describe metadata.

``check_write`` returns the body coerced to stored values (18-character IDs, normalised datetimes)
or raises the first ``ApiError`` a real org would report, in this order: unknown field
(INVALID_FIELD), read-only field (INVALID_FIELD_FOR_INSERT_UPDATE), value of the wrong JSON type
(JSON_PARSER_ERROR / MALFORMED_ID), missing required fields (REQUIRED_FIELD_MISSING, all of them,
in describe order), STRING_TOO_LONG, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, INVALID_EMAIL_ADDRESS.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from . import ids
from .errors import ApiError, json_parser_error, malformed_id
from .schema import FieldSpec, ObjectSpec

_TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist"}
_NUMBER_TYPES = {"double", "currency", "percent"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_write(
    spec: ObjectSpec, body: dict[str, Any], *, creating: bool, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The validated, coerced values of ``body`` for a create (or an update of ``current``)."""
    resolved: list[tuple[FieldSpec, Any]] = []
    for name, value in body.items():
        if name == "attributes":
            continue
        field = spec.field(name)
        if field is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
            )
        resolved.append((field, value))
    read_only = [f.name for f, _ in resolved if not (f.createable if creating else f.updateable)]
    if read_only:
        raise ApiError(
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.",
            read_only,
        )
    values = {f.name: _coerce(f, v) for f, v in resolved}
    merged = {**(current or {}), **values}
    missing = [
        f.name
        for f in spec.fields
        if f.required and merged.get(f.name) in (None, "") and (creating or f.name in values)
    ]
    if missing:
        raise ApiError(
            400,
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
    for field, _ in resolved:
        _check_value(field, values[field.name])
    return values


def _coerce(field: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    kind = field.type
    if kind in _TEXT_TYPES:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise _cannot_deserialize("string", value)
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise _cannot_deserialize("boolean", value)
    if kind in _NUMBER_TYPES or kind == "int":
        number = _number(value)
        if number is None or (kind == "int" and not float(number).is_integer()):
            raise _cannot_deserialize("int" if kind == "int" else "double", value)
        return int(number) if kind == "int" else number
    if kind == "date":
        if isinstance(value, str) and _DATE.match(value) and _valid_date(value):
            return value
        raise _cannot_deserialize("date", value)
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _cannot_deserialize("datetime", value)
        return format_datetime(parsed)
    if kind in {"reference", "id"}:
        normal = ids.normalize(value) if isinstance(value, str) else None
        targets = {ids.KEY_PREFIXES[t] for t in field.reference_to}
        if normal is None or (targets and normal[:3] not in targets):
            raise malformed_id(field.display_label, value, field.name)
        return normal
    return value


def _number(value: Any) -> int | float | None:
    """A JSON number, or a numeric string (the API's JSON reader accepts both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_value(field: FieldSpec, value: Any) -> None:
    if value is None or not isinstance(value, str):
        return
    if field.type in _TEXT_TYPES and field.type != "picklist" and len(value) > field.length:
        raise ApiError(
            400,
            "STRING_TOO_LONG",
            f"{field.display_label}: data value too large: {value} (max length={field.length})",
            [field.name],
        )
    if field.type == "picklist" and field.restricted and value not in field.picklist:
        raise ApiError(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{field.display_label}: bad value for restricted picklist field: {value}",
            [field.name],
        )
    if field.type == "email" and value and not _EMAIL.match(value):
        raise ApiError(
            400,
            "INVALID_EMAIL_ADDRESS",
            f"{field.display_label}: invalid email address: {value}",
            [field.name],
        )


def _cannot_deserialize(kind: str, value: Any) -> ApiError:
    token = {
        str: "VALUE_STRING",
        bool: "VALUE_TRUE" if value else "VALUE_FALSE",
        int: "VALUE_NUMBER_INT",
        float: "VALUE_NUMBER_FLOAT",
        list: "START_ARRAY",
        dict: "START_OBJECT",
    }.get(type(value), "VALUE_STRING")
    return json_parser_error(
        f"Cannot deserialize instance of {kind} from {token} value {value} "
        "or request may be missing a required field"
    )


def _valid_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_datetime(value: str) -> dt.datetime | None:
    """An aware datetime from Salesforce's ``2013-05-20T20:49:32.000+0000`` or ISO 8601 forms."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*[T ].*)([+-]\d{2})(\d{2})$", text)
    if match:
        text = f"{match.group(1)}{match.group(2)}:{match.group(3)}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(moment: dt.datetime) -> str:
    """Salesforce's wire format for datetimes: millisecond precision, ``+0000`` offset."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"
