"""The errors of the ``topics`` package: one root, the tree below.

TopicsError                      anything this package rejects
├── DecodeError                  input bytes that cannot become an Event (never retriable:
│   │                            the same bytes fail the same way, so they go to the dead letters)
│   ├── PayloadTooLarge          payload_too_large   larger than the decoder's ``max_bytes``
│   ├── MalformedJson            malformed_json      not UTF-8 JSON; carries orjson's message and position
│   ├── TooDeep                  too_deep            objects and arrays nested deeper than ``limit``
│   ├── UnknownEventType         unknown_event_type  a type no decoder knows
│   ├── MissingField             missing_field       a required field is absent or null; ``path`` names it
│   └── InvalidField             invalid_field       a field has the wrong type or shape; ``path`` names it
└── HeaderError                  a Kafka header value that does not parse (``header`` names it)

``code`` is the stable machine-readable name (the dead-letter header
``actionflows.errors.reason`` carries it as ``decode.<code>``); ``reason`` is the human sentence.
"""

from __future__ import annotations

from typing import ClassVar


class TopicsError(Exception):
    """Root of every error raised by :mod:`topics`."""

    retriable: ClassVar[bool] = False


class DecodeError(TopicsError):
    """Input bytes that cannot be decoded into an :class:`pipeline.events.Event`."""

    default_code: ClassVar[str] = "decode_error"

    def __init__(self, reason: str, code: str | None = None) -> None:
        self.reason = reason
        self.code = code or self.default_code
        self.topic: str | None = None  # set by decode_event: where the bytes came from
        super().__init__(f"{self.code}: {reason}")


class PayloadTooLarge(DecodeError):
    default_code = "payload_too_large"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"payload is {size} bytes, the limit is {limit}")


class MalformedJson(DecodeError):
    default_code = "malformed_json"

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message} at byte {position}")


class TooDeep(DecodeError):
    default_code = "too_deep"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"objects and arrays nest more than {limit} levels deep")


class UnknownEventType(DecodeError):
    default_code = "unknown_event_type"

    def __init__(self, event_type: str, reason: str | None = None) -> None:
        self.event_type = event_type
        super().__init__(reason or f"unknown event type {event_type!r}")


class MissingField(DecodeError):
    default_code = "missing_field"

    def __init__(self, path: str, reason: str | None = None) -> None:
        self.path = path
        super().__init__(reason or f"{path} is required")


class InvalidField(DecodeError):
    default_code = "invalid_field"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: {reason}")


class HeaderError(TopicsError):
    """A header is present but its value does not parse."""

    def __init__(self, header: str, reason: str) -> None:
        self.header = header
        self.reason = reason
        super().__init__(f"header {header}: {reason}")
