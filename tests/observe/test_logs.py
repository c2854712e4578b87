"""Log lines: one JSON object per line with the context that applies, secrets kept out."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from agents.observe import logs
from agents.observe.logs import JsonFormatter, TextFormatter, log_context
from agents.settings import ObserveSettings

BEARER = "Bearer eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln"


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("agents.engine", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_carries_the_context_that_applies() -> None:
    """Inside a run's context: event id, ticket, flow, step and trace id; outside: none."""
    formatter = JsonFormatter()
    with (
        log_context(event_id="e1", ticket="35436", flow="create-lead", trace_id="ab" * 16),
        log_context(step="create_lead"),
    ):
        line = orjson.loads(formatter.format(_record("step %s failed", "create_lead")))
    assert line["message"] == "step create_lead failed"
    assert (line["level"], line["logger"]) == ("warning", "agents.engine")
    assert {k: line[k] for k in ("event_id", "ticket", "flow", "step", "trace_id")} == {
        "event_id": "e1", "ticket": "35436", "flow": "create-lead", "step": "create_lead",
        "trace_id": "ab" * 16,
    }  # fmt: skip
    outside = orjson.loads(formatter.format(_record("idle")))
    assert "ticket" not in outside
    assert outside["ts"].endswith("Z")


def test_credentials_and_pii_are_redacted_in_both_formats() -> None:
    """Tokens in messages and exceptions are scrubbed; extra= values masked by key name."""
    try:
        raise RuntimeError(f"login failed: Authorization: {BEARER}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = _record("sent %s", BEARER, fields={"Email": "ada@example.com", "LastName": "L"})
    record.exc_info = exc_info
    assert BEARER in record.getMessage()  # control: the raw record holds the secret
    json_line = JsonFormatter().format(record)
    text_line = TextFormatter().format(record)
    for line in (json_line, text_line):
        assert "eyJhbGciOiJSUzI1NiJ9" not in line
        assert "ada@example.com" not in line
        assert "RuntimeError" in line
    assert orjson.loads(json_line)["fields"] == {"Email": "***", "LastName": "L"}


def test_settings_choose_the_format_and_reject_unknown_ones() -> None:
    assert ObserveSettings.from_env({}).log_format == "text"
    assert ObserveSettings.from_env({"ACTIONFLOWS_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ValueError, match="ACTIONFLOWS_LOG_FORMAT"):
        ObserveSettings.from_env({"ACTIONFLOWS_LOG_FORMAT": "xml"})


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_follow_the_topics_rules(log_format: str) -> None:
    """Both log formats mask personal data in the message and the traceback alike, as the
    topics do (an email in an exception, a phone number in an argument)."""
    formatter = logs.formatter(log_format)
    try:
        raise ValueError("refused jane@acme.example")
    except ValueError:
        record = logging.LogRecord(
            "agents.engine", logging.ERROR, __file__, 1, "lead for %s", ("+44 20 7946 0958",), None
        )
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "jane@acme.example" not in text
    assert "+44 20 7946 0958" not in text
    assert "ValueError" in text
