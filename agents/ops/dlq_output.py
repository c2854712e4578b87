"""What ``actionflows dlq`` prints. Nothing here reaches Kafka.

Header values pass through :func:`topics.redaction.scrub` (credentials), payloads through
:func:`topics.redaction.redact` (secrets and personal data) unless ``--raw``. A payload that is
not a JSON object cannot be redacted field by field; it is shown scrubbed and truncated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from agents.ops.common import format_ms
from agents.ops.letters import DeadLetter, how, redrive_record
from agents.ops.redrive import RedriveReport
from topics import headers as h
from topics.redaction import redact, scrub

MAX_RAW_CHARS = 2000


def _summary(letter: DeadLetter) -> dict[str, Any]:
    context = letter.context
    return {
        "position": letter.position,
        "dead_lettered_at": format_ms(letter.timestamp_ms),
        "stage": context.stage.value if context else None,
        "reason": context.reason if context else None,
        "error_code": context.salesforce_error_code if context else None,
        "flow": context.flow if context else None,
        "step": context.step if context else None,
        "attempts": context.attempts if context else None,
        "ticket": letter.ticket,
        "event_id": context.event_id if context else None,
        "problem": letter.problem,
    }


def print_letters(
    letters: Sequence[DeadLetter], markers: Mapping[str, Any], topic: str, *, as_json: bool
) -> None:
    for letter in letters:
        row = _summary(letter)
        marker = markers.get(letter.position)
        row["redriven_by"] = marker.get("redrive_id") if marker else None
        if as_json:
            print(orjson.dumps(row).decode())
            continue
        where = "/".join(str(row[k]) for k in ("flow", "step") if row[k]) or "-"
        code = row["error_code"] or row["reason"] or f"unreadable: {letter.problem}"
        done = f"  redriven by {row['redriven_by']}" if marker else ""
        print(
            f"{letter.position:>10}  {row['dead_lettered_at']}  {row['stage'] or '?':<6}  "
            f"{code:<34}  {where:<32}  ticket {row['ticket']}{done}"
        )
    if not as_json:
        print(f"{len(letters)} dead letter(s) on {topic}")


def _header_text(value: bytes) -> str:
    try:
        return scrub(value.decode("utf-8"))
    except UnicodeDecodeError:
        return f"0x{value[:64].hex()}" + ("…" if len(value) > 64 else "")


def _payload(value: bytes, *, raw: bool) -> str:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        text = value.decode("utf-8", errors="replace")
        cut = text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "…"
        return f"not JSON, shown as text{'' if raw else ' with credentials scrubbed'}:\n" + (
            cut if raw else scrub(cut)
        )
    if isinstance(doc, dict) and not raw:
        doc = redact(doc)  # personal data and secrets masked
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def print_letter(letter: DeadLetter, markers: Mapping[str, Any], topic: str, *, raw: bool) -> None:
    print(
        f"dead letter {letter.position} on {topic}, dead-lettered {format_ms(letter.timestamp_ms)}"
    )
    print(f"key: {letter.ticket}")
    if letter.problem:
        print(f"context headers unreadable: {letter.problem}")
    print("context:")
    for name, value in letter.headers:
        if name.startswith(h.ERRORS):
            print(f"  {name.removeprefix(h.ERRORS):<24} {_header_text(value)}")
    others = [(n, v) for n, v in letter.headers if not n.startswith(h.ERRORS)]
    if others:
        print("other headers:")
        for name, value in others:
            print(f"  {name:<32} {_header_text(value)}")
    marker = markers.get(letter.position)
    if marker:
        print(
            f"redriven: by {marker.get('redrive_id')} at {format_ms(marker.get('at_ms'))} "
            f"to {marker.get('topic')}[{marker.get('partition')}]"
        )
    if letter.context is not None:
        sent = redrive_record(letter, dead_letter_topic=topic, redrive_id="-", now_ms=0)
        print(f"a redrive sends it to {sent.topic}[{sent.partition}] as a {how(sent)}")
    print(
        f"payload, {len(letter.value)} bytes" + ("" if raw else " (--raw shows it unmasked)") + ":"
    )
    print(_payload(letter.value, raw=raw))


def print_redrive(report: RedriveReport) -> None:
    verb = "would redrive" if report.dry_run else "redriven"
    for letter, sent in report.redriven:
        print(f"{letter.position:>10}  {verb} -> {sent.topic}[{sent.partition}] as a {how(sent)}")
    for letter, marker in report.already:
        print(
            f"{letter.position:>10}  skipped: already redriven by {marker.get('redrive_id')} "
            f"at {format_ms(marker.get('at_ms'))} (--force redrives it again)"
        )
    for letter, reason in report.refused:
        print(f"{letter.position:>10}  cannot be redriven: {reason}")
    print(
        f"redrive {report.redrive_id}: {len(report.redriven)} {verb}, {len(report.already)} "
        f"already redriven, {len(report.refused)} cannot be redriven"
        + (" (dry run: nothing was published)" if report.dry_run else "")
    )
