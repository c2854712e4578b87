"""Why the ingest refuses a request: one root, each class with its HTTP status.

    IngestError               anything the ingest answers with other than 2xx
    ├── Unauthorized      401 a missing or wrong signature or token, a stale timestamp
    ├── TooLarge          413 the body is over the size limit
    ├── BadRequest        400 the body does not decode (the worker would dead-letter it)
    └── BrokerUnavailable 503 the broker did not acknowledge in time   (retriable)

``retriable`` tells the sender whether the same request may succeed later: only a 503 is worth
sending again (with ``Retry-After``). Messages never quote a secret or the body.
"""

from __future__ import annotations

from typing import Any, ClassVar

from topics.errors import DecodeError


class IngestError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retriable: ClassVar[bool] = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"error": code, "reason": sentence, ...}``."""
        return {"error": self.code, "reason": self.reason}


class Unauthorized(IngestError):
    status = 401
    code = "unauthorized"


class TooLarge(IngestError):
    status = 413
    code = "payload_too_large"


class BadRequest(IngestError):
    status = 400
    code = "bad_request"

    def __init__(self, error: DecodeError, index: int | None = None) -> None:
        self.decode_error = error
        self.index = index  # the position in a JSON array of events
        where = "" if index is None else f"event [{index}]: "
        super().__init__(where + error.reason)

    @property
    def path(self) -> str | None:
        path = getattr(self.decode_error, "path", None)
        return path if isinstance(path, str) else None

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"error": self.decode_error.code, "reason": self.reason}
        if self.path is not None:
            answer["path"] = self.path
        if self.index is not None:
            answer["index"] = self.index
        return answer


class BrokerUnavailable(IngestError):
    status = 503
    code = "broker_unavailable"
    retriable = True
