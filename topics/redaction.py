"""Keeping secrets and personal data out of what the service publishes.

Two tools, for two kinds of data:

- :func:`redact` works on structured data (step inputs and outputs, error details): the value of
  every key named like a secret or a configured PII field is replaced by ``"***"``, at any
  depth, matching key names case-insensitively.
- :func:`scrub` works on free text (exception messages that go into headers): it removes bearer
  tokens, ``Authorization:`` values and ``access_token=…``-style pairs, whatever the text is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_KEYS = frozenset(
    {
        "password",
        "token",
        "secret",
        "authorization",
        "private_key",
        "client_secret",
        "access_token",
        "refresh_token",
        "api_key",
        "session_id",
    }
)
#: Personal data redacted from published step records by default; flows that must show an
#: email in the output topic pass a smaller set.
DEFAULT_PII_KEYS = frozenset({"email", "phone", "mobilephone"})
DEFAULT_REDACT_KEYS = SECRET_KEYS | DEFAULT_PII_KEYS


def redact(
    mapping: Mapping[str, Any], keys: frozenset[str] = DEFAULT_REDACT_KEYS
) -> dict[str, Any]:
    """A copy of ``mapping`` with the values of ``keys`` (any case, any depth) masked."""
    lowered = frozenset(key.lower() for key in keys)
    return {key: _redact_item(key, value, lowered) for key, value in mapping.items()}


def _redact_item(key: object, value: Any, keys: frozenset[str]) -> Any:
    if isinstance(key, str) and key.lower() in keys and value is not None:
        return MASK
    return _redact_value(value, keys)


def _redact_value(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item, keys) for item in value]
    return value


# Key names whose values are credentials; a pattern, not a credential.
_CREDENTIAL_KEYS = (
    r"(?:access_token|refresh_token|id_token|client_secret|password|api_key|token|secret"
    r"|sessionid|session_id)"
)
_PATTERNS = (
    # "Authorization: Bearer abc", "authorization=Basic abc", JSON "Authorization": "…" — the
    # whole value, up to the end of the line or the next separator.
    (re.compile(r"(?i)(authorization\"?\s*[:=]\s*)[^\r\n,;}]+"), r"\1" + MASK),
    # a bare "Bearer eyJ..." anywhere else
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/!]+=*"), r"\1" + MASK),
    # access_token=..., "client_secret": "...", password: ...
    (re.compile(rf"(?i)(\"?\b{_CREDENTIAL_KEYS}\"?\s*[:=]\s*\"?)[^\"&\s,;}}]+"), r"\1" + MASK),
)


def scrub(text: str) -> str:
    """``text`` with credentials removed; safe to put in a header or a log line."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
