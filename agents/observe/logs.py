"""Log lines that say which event, ticket, flow, step and trace they are about, with secrets out.

:func:`log_context` binds those fields for the code that runs inside it (a context variable, so
each concurrently running ticket keeps its own); every log record made there carries them.
:func:`configure` installs one handler on the root logger: ``text`` (the default, human) or
``json`` (``ACTIONFLOWS_LOG_FORMAT=json``: one JSON object per line, for a log pipeline).

Both formats apply the redaction rules of :mod:`topics.redaction`, the same as the topics': the
message and any exception text pass through :meth:`~topics.redaction.Redactor.text`
(credentials, email addresses, international phone numbers, JSON pairs of masked keys), and
structured values given with ``extra=`` are masked by key name, as step records are.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from topics.redaction import DEFAULT_REDACT_KEYS, Redactor

#: The fields a log line may carry about what it concerns, in the order they are printed.
CONTEXT_FIELDS = ("event_id", "ticket", "flow", "step", "trace_id")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "actionflows_log_context", default=_EMPTY
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def log_context(**fields: str | None) -> _Bound:
    """Bind ``fields`` (``None`` values ignored) for log records made inside the block."""
    return _Bound({k: v for k, v in fields.items() if v is not None})


class _Bound:
    """:func:`log_context`'s block: a plain context manager, as it is entered for every run and
    step (a generator-based one costs several times as much)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *exc_info: object) -> None:
        _context.reset(self._token)


def current_context() -> Mapping[str, str]:
    return _context.get()


class _Redacting(logging.Formatter):
    def __init__(self, redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS) -> None:
        super().__init__()
        self.redactor = Redactor(redact_keys)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The bound context, then the record's ``extra=`` values, redacted."""
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        context = {k: v for k, v in current_context().items() if k in CONTEXT_FIELDS}
        return {**context, **self.redactor.mapping(extra)}

    def exception_text(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.redactor.text(self.formatException(record.exc_info))
        return None


class TextFormatter(_Redacting):
    """``2026-11-25T10:00:00.123Z INFO agents.engine: message [ticket=35436 flow=x]``."""

    def format(self, record: logging.LogRecord) -> str:
        at = _timestamp(record.created)
        fields = self.fields(record)
        suffix = " [" + " ".join(f"{k}={_text(v)}" for k, v in fields.items()) + "]"
        line = f"{at} {record.levelname} {record.name}: {self.redactor.text(record.getMessage())}"
        line += suffix if fields else ""
        exception = self.exception_text(record)
        return f"{line}\n{exception}" if exception else line


class JsonFormatter(_Redacting):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the context
    fields that apply, ``extra=`` values, and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redactor.text(record.getMessage()),
            **self.fields(record),
        }
        if (exception := self.exception_text(record)) is not None:
            line["exception"] = exception
        return orjson.dumps(line, default=str).decode()


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Send every log record to stderr in ``log_format``, replacing earlier handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def _timestamp(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
