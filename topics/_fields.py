"""Typed reads from decoded JSON, each failure naming the field by a JSONPath-like path.

Shared by the Zendesk and generic decoders so both report ``$.ticket.id`` the same way.
Ids may arrive as JSON strings or integers (Zendesk's REST API uses integers, its webhooks
strings); both become ``str``. Booleans are never accepted as ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topics.errors import InvalidField, MissingField

JsonObject = Mapping[str, Any]


def child(path: str, key: str) -> str:
    return f"{path}.{key}"


def _kind(value: object) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def obj(parent: JsonObject, key: str, path: str) -> JsonObject | None:
    """An optional nested object: absent or null gives None, anything else but an object fails."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(child(path, key), f"expected an object, got {_kind(value)}")
    return value


def opt_str(parent: JsonObject, key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(child(path, key), f"expected a string, got {_kind(value)}")
    return value


def req_str(parent: JsonObject, key: str, path: str) -> str:
    value = opt_str(parent, key, path)
    if value is None:
        raise MissingField(child(path, key))
    if not value.strip():
        raise InvalidField(child(path, key), "must not be empty")
    return value


def opt_id(parent: JsonObject, key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidField(child(path, key), f"expected a string or integer id, got {_kind(value)}")
    text = str(value)
    if not text.strip():
        raise InvalidField(child(path, key), "must not be empty")
    return text


def req_id(parent: JsonObject, key: str, path: str) -> str:
    value = opt_id(parent, key, path)
    if value is None:
        raise MissingField(child(path, key))
    return value


def opt_str_list(parent: JsonObject, key: str, path: str) -> list[str] | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidField(child(path, key), f"expected an array of strings, got {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidField(f"{path}.{key}[{index}]", f"expected a string, got {_kind(item)}")
    return list(value)
