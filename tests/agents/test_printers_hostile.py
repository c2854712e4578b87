"""The operator printers (``dlq show``, ``dlq list``, the demo's watcher) print any record, whatever
its bytes, without a traceback, and mask personal data unless ``--raw``. No broker."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from agents.demo import Watcher
from agents.ops import output
from agents.ops.letters import DeadLetter
from pipeline.events import MAX_DEPTH
from topics import headers as h
from topics.catalogue import Catalogue, TopicRole
from topics.codecs import decode_event
from topics.errors import DecodeError
from topics.records import DeadLetterRecord

DEEP = b'{"id": "e1", "type": "ticket.created", "ticket_id": "7", "requester": {"email": '
DEEP += b'"jane.doe@acme.example"}, "attributes": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001


def deep_letter() -> DeadLetter:
    """The dead letter the engine publishes for a 1,000-deep event."""
    with pytest.raises(DecodeError) as caught:
        decode_event(DEEP, topic="af.tickets")
    record = DeadLetterRecord.for_decode_error(
        caught.value, key=b"7", value=DEEP, headers=[], topic="af.tickets", partition=0, offset=5
    )
    return DeadLetter.of(0, 9, 1_800_000_000_000, record.key, record.value, record.headers)


def shown(letter: DeadLetter, *, raw: bool) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        output.print_letter(letter, {}, "af.dead-letters", raw=raw)
    return out.getvalue()


@pytest.mark.parametrize("raw", [False, True])
def test_dlq_show_prints_a_1000_deep_letter(raw: bool) -> None:
    """Reproduction of issue 9: this crashed with RecursionError (and, with --raw, orjson's
    recursion limit). Now the payload is shown as text, masked unless --raw."""
    text = shown(deep_letter(), raw=raw)
    assert "reason                   decode.too_deep" in text
    assert f"JSON nested deeper than {MAX_DEPTH} levels, shown as text" in text
    assert ("jane.doe@acme.example" in text) is raw


def test_without_the_depth_check_dlq_show_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: printing the deep payload as JSON is what failed."""
    monkeypatch.setattr(output, "nesting_depth", lambda *_, **__: 0)
    with pytest.raises(TypeError, match="Recursion limit"):
        shown(deep_letter(), raw=True)


def test_dlq_show_masks_personal_data_in_json_of_any_shape() -> None:
    """Objects and arrays alike: emails and phones masked, shown with --raw."""
    value = b'[{"Phone": "+1 415 555 0100", "note": "mail jane@acme.example"}]'
    letter = DeadLetter.of(0, 1, None, b"k", value, [])
    masked = shown(letter, raw=False)
    assert "+1 415 555 0100" not in masked
    assert "jane@acme.example" not in masked
    assert "+1 415 555 0100" in shown(letter, raw=True)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

error_headers = st.sampled_from(
    [
        *(h.ERROR_TOPIC, h.ERROR_PARTITION, h.ERROR_OFFSET, h.ERROR_STAGE, h.ERROR_REASON),
        *(h.ERROR_EXCEPTION_CLASS, h.ERROR_EXCEPTION_MESSAGE, h.ERROR_FLOW, h.ERROR_STEP),
        *(h.RETRY_ATTEMPT, h.RETRY_ORIGIN_TOPIC, "traceparent"),
    ]
)
header_values = st.binary(max_size=40) | st.sampled_from(
    [b"0", b"-1", b"step", b"decode", b"af.tickets", b"\x1b[31mred", b"[/bold]", b"\xff\xfe"]
)
headers = st.lists(st.tuples(error_headers | st.text(max_size=10), header_values), max_size=12)
payloads = (
    st.binary(max_size=200)
    | st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 3000))
    | st.builds(lambda n: b'{"a":' * n + b"1" + b"}" * n, st.integers(0, 1200))
    | st.builds(lambda t: t.encode("utf-8", "surrogatepass"), st.text(max_size=80))
    | st.sampled_from([b'"\\u0000\\u001b[2J"', b'{"email": "x@y.z\\u009b"}', b"x" * 100_000])
)
timestamps = st.none() | st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(payloads, headers, st.none() | st.binary(max_size=20), timestamps, st.booleans())
def test_dlq_show_and_list_print_any_record(
    value: bytes,
    items: list[tuple[str, bytes]],
    key: bytes | None,
    timestamp: int | None,
    raw: bool,
) -> None:
    """Any payload, headers, key and timestamp: printed, in printable characters only."""
    letter = DeadLetter.of(3, 7, timestamp, key, value, items)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        output.print_letter(letter, {}, "af.dead-letters", raw=raw)
        output.print_letters([letter], {}, "af.dead-letters", as_json=False)
        output.print_letters([letter], {letter.position: {"at_ms": "x"}}, "dl", as_json=True)
    assert not _CONTROL.search(out.getvalue())


CATALOGUE = Catalogue.build()
ROLES = [TopicRole.STEP_OUTPUTS, TopicRole.RUN_RESULTS, TopicRole.RETRY, TopicRole.DEAD_LETTERS]
records = st.binary(max_size=120) | st.sampled_from(
    [
        b'{"status": "succeeded", "flow": "[/red]", "step": 1, "duration_ms": "x"}',
        b'{"status": "dead_letter", "flow": "f", "event_id": "\\u001b[2J"}',
        b"[]",
        b"null",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ROLES), records, headers)
def test_the_demo_watcher_shows_any_record(
    role: TopicRole, value: bytes, items: list[tuple[str, bytes]]
) -> None:
    """Foreign records, missing fields, rich markup and escapes in values: one line each."""
    screen = io.StringIO()
    watcher = Watcher("127.0.0.1:9", CATALOGUE, Console(file=screen, width=200))
    watcher._show(role, value, items)
    assert screen.getvalue().count("\n") >= 1
    assert not _CONTROL.search(screen.getvalue().replace("\n", ""))
