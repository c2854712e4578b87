"""Every failure the Zendesk client reports, and how to read one out of a response.

One root, the tree below; ``retriable`` says whether the same request may succeed later::

    ZendeskError                 R  anything this package raises
    ├── ConfigurationError       -  the settings are incomplete or contradictory
    ├── TransportError           R  no usable HTTP response: refused, reset, timed out
    ├── RateLimited              R  429 Too Many Requests
    ├── ServerError              R  5xx
    ├── AuthenticationFailed     -  401: "Couldn't authenticate you" (a wrong or revoked token)
    ├── Forbidden                -  403: the user behind the credentials may not read this
    ├── NotFound                 -  404: RecordNotFound
    ├── RequestError             -  any other 4xx: the request itself is wrong
    └── InvalidResponse          -  a 2xx whose body is not the documented shape

Zendesk answers business errors with a JSON object (``{"error": "RecordNotFound",
"description": "Not found"}``, or ``{"error": "Couldn't authenticate you"}`` on a 401) and
API-level errors, rate limiting included, with ``text/plain``
(developer.zendesk.com/api-reference/introduction/requests). :func:`for_response` reads both.
Messages never carry credentials: only the status and what Zendesk wrote in the body.
``retry_after_s`` is the wait a 429 (or a 503) asked for in its Retry-After header, else None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

#: Longest slice of a response body quoted in an error message.
_QUOTE_LIMIT = 200


class ZendeskError(Exception):
    """Root of the package's errors."""

    retriable: ClassVar[bool] = False
    #: a short stable name for counters and logs ("rate_limited", "unavailable", ...)
    reason: ClassVar[str] = "error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        self.status = status
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ConfigurationError(ZendeskError, ValueError):
    reason = "misconfigured"


class TransportError(ZendeskError):
    retriable = True
    reason = "unavailable"


class RateLimited(ZendeskError):
    retriable = True
    reason = "rate_limited"


class ServerError(ZendeskError):
    retriable = True
    reason = "unavailable"


class AuthenticationFailed(ZendeskError):
    reason = "unauthorized"


class Forbidden(ZendeskError):
    reason = "forbidden"


class NotFound(ZendeskError):
    reason = "not_found"


class RequestError(ZendeskError):
    reason = "bad_request"


class InvalidResponse(ZendeskError):
    reason = "invalid_response"


_BY_STATUS: Mapping[int, type[ZendeskError]] = {
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFound,
}

#: Retry-After when a 429 forgets to send one: Zendesk's limits are per minute.
DEFAULT_RETRY_AFTER_S = 60.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header given in seconds; None when absent or not a number."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def _described(status: int, body: bytes) -> str:
    """``<status>: <error>: <description>`` from a JSON error body, else the text, shortened."""
    text = body[:_QUOTE_LIMIT].decode("utf-8", "replace").strip()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status}: {text}" if text else f"HTTP {status}"
    if isinstance(doc, dict):
        parts = [str(doc[key]) for key in ("error", "description") if doc.get(key)]
        if parts:
            return f"HTTP {status}: " + ": ".join(parts)[:_QUOTE_LIMIT]
    return f"HTTP {status}: {text}"


def for_response(status: int, body: bytes, headers: Mapping[str, str]) -> ZendeskError:
    """The error for an unsuccessful response (status 400 and above)."""
    message = _described(status, body)
    wait = retry_after(headers)
    if status == 429:
        wait = DEFAULT_RETRY_AFTER_S if wait is None else wait
        return RateLimited(message, status=status, retry_after_s=wait)
    if status >= 500:
        return ServerError(message, status=status, retry_after_s=wait)
    return _BY_STATUS.get(status, RequestError)(message, status=status)
