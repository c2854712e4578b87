"""What the operator tools print: replay plans and summaries, dead letters. Nothing here reaches
Kafka.

Personal data and secrets are masked unless ``--raw``: planned writes, letter payloads and header
values through :class:`topics.redaction.Redactor`. A payload that is not JSON, or nests deeper than
an event may (:data:`pipeline.events.MAX_DEPTH`), cannot be redacted field by field; it is shown
as text, redacted as text, and truncated. Whatever the bytes, printing never fails: every line
goes through :func:`emit`, which shows control characters and lone surrogates as escapes.
With ``--json`` stdout carries JSON lines only and operator notes go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from rich.console import Console

from agents.ops.common import format_ms
from agents.ops.dry_run import EventPlan
from agents.ops.letters import DeadLetter, how, redrive_record
from pipeline.events import MAX_DEPTH, nesting_depth
from topics import headers as h
from topics.redaction import Redactor

if TYPE_CHECKING:  # the tools import this module to print; their types are only annotations here
    from agents.ops.dlq import RedriveReport
    from agents.ops.replay import Progress, ReplayReport

#: How a dry run says a run would end (pipeline RunStatus values).
ENDINGS = {
    "succeeded": "succeed",
    "skipped": "skip (no step applies)",
    "retry_later": "be retried later",
    "paused": "pause (API budget)",
    "dead_letter": "be dead-lettered",
}


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (but newline and tab) and lone
    surrogates become escapes, so a hostile payload can neither drive the terminal nor make
    printing fail."""
    return _UNPRINTABLE.sub(_escape, text)


def emit(text: str = "", *, file: TextIO | None = None) -> None:
    """Print one line (or several) made printable."""
    print(printable(text), file=file or sys.stdout)


def say(args: argparse.Namespace, text: str) -> None:
    """A line for the operator: on stdout, or on stderr when stdout carries JSON lines."""
    emit(text, file=sys.stderr if args.json else sys.stdout)


def printer(*, raw: bool) -> Callable[[EventPlan], None]:
    def show(plan: EventPlan) -> None:
        event = plan.event
        if event is None:
            emit(f"{plan.position}  does not decode ({plan.error}): the engine dead-letters it")
            return
        emit(f"{plan.position}  event {event.id}  ticket {event.ticket_id}  {event.type}")
        if not plan.flows:
            emit("    no flow matches")
        for flow in plan.flows:
            ending = f"would {ENDINGS.get(flow.status, flow.status)}"
            if flow.failed_step:
                ending += f" at {flow.failed_step} ({flow.reason})"
            emit(f"    {flow.flow} v{flow.version}: {ending}")
            if flow.reused:
                emit(f"        already done (reused from the ledger): {', '.join(flow.reused)}")
            for write in flow.writes:
                values = ", ".join(f"{k}={v!r}" for k, v in write.shown(raw=raw).items())
                emit(f"        {write.step}: {write.label}  {values}")

    return show


def json_printer(*, raw: bool) -> Callable[[EventPlan], None]:
    def show(plan: EventPlan) -> None:
        flows = [
            {
                "flow": f.flow,
                "version": f.version,
                "status": f.status,
                "failed_step": f.failed_step,
                "reason": f.reason,
                "reused": list(f.reused),
                "writes": [
                    {
                        "step": w.step,
                        "action": w.action,
                        "object": w.object,
                        "values": w.shown(raw=raw),
                    }
                    for w in f.writes
                ],
            }
            for f in plan.flows
        ]
        event_id = plan.event.id if plan.event else None
        line = {
            "position": plan.position,
            "event_id": event_id,
            "error": plan.error,
            "flows": flows,
        }
        emit(orjson.dumps(line).decode())

    return show


def _replay_lines(report: ReplayReport) -> Iterator[str]:
    ranges = ", ".join(f"{p}:{a}-{b - 1}" for p, (a, b) in sorted(report.ranges.items()) if b > a)
    yield (
        f"replay {report.replay_id}: read {report.read} records of {report.topic} "
        f"[{ranges or 'empty'}], {report.selected} selected"
    )
    if not report.dry_run:
        yield f"republished {report.republished} to {report.target}"
        return
    tally = report.tally
    writes = ", ".join(f"{label} x{n}" for label, n in sorted(tally.writes.items())) or "none"
    yield (
        f"dry run: {tally.events} events ({tally.undecodable} undecodable), {tally.runs} flow "
        f"runs ({tally.failed_runs} would not succeed), writes: {writes}"
    )
    yield "dry run: nothing was published and nothing was written to Salesforce"


def print_summary(report: ReplayReport, *, as_json: bool) -> None:
    if not as_json:
        emit("\n".join(_replay_lines(report)))
        return
    emit(
        orjson.dumps(
            {
                "replay_id": report.replay_id,
                "topic": report.topic,
                "target": report.target,
                "dry_run": report.dry_run,
                "read": report.read,
                "selected": report.selected,
                "republished": report.republished,
                "runs": report.tally.runs,
                "failed_runs": report.tally.failed_runs,
                "writes": dict(report.tally.writes),
            }
        ).decode()
    )


class LineProgress:
    """A progress line on stderr every ``every`` records (for logs, where a bar is noise)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if done % self.every == 0:
            rate = done / max(time.monotonic() - self.started, 1e-9)
            emit(f"replay: {done}/{total} records read ({rate:.0f}/s)", file=sys.stderr)


@contextlib.contextmanager
def progress(every: int, enabled: bool) -> Iterator[Progress | None]:
    """A rich bar when stderr is a terminal, else a line every ``every`` records."""
    if not enabled:
        yield None
    elif not sys.stderr.isatty():
        yield LineProgress(every)
    else:
        from rich.progress import Progress as Bar

        with Bar(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task("replay", total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)


MAX_RAW_CHARS = 2000


def _letter_row(letter: DeadLetter) -> dict[str, Any]:
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
        row = _letter_row(letter)
        marker = markers.get(letter.position)
        row["redriven_by"] = marker.get("redrive_id") if marker else None
        if as_json:
            emit(orjson.dumps(row).decode())
            continue
        where = "/".join(str(row[k]) for k in ("flow", "step") if row[k]) or "-"
        code = row["error_code"] or row["reason"] or f"unreadable: {letter.problem}"
        done = f"  redriven by {row['redriven_by']}" if marker else ""
        emit(
            f"{letter.position:>10}  {row['dead_lettered_at']}  {row['stage'] or '?':<6}  "
            f"{code:<34}  {where:<32}  ticket {row['ticket']}{done}"
        )
    if not as_json:
        emit(f"{len(letters)} dead letter(s) on {topic}")


def _cut(text: str, limit: int = MAX_RAW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def header_text(value: bytes) -> str:
    """A header's value as text, scrubbed of credentials and cut (bytes that are not UTF-8 as hex)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return f"0x{value[:64].hex()}" + ("…" if len(value) > 64 else "")
    return _cut(Redactor().text(text))


def payload_text(value: bytes, *, raw: bool) -> str:
    """A letter's payload as indented JSON, personal data and secrets masked unless ``raw``."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return _as_text(value, f"not JSON ({error.msg})", raw=raw)
    if nesting_depth(doc, stop_above=MAX_DEPTH) > MAX_DEPTH:
        return _as_text(value, f"JSON nested deeper than {MAX_DEPTH} levels", raw=raw)
    if not raw:
        doc = Redactor().data(doc)  # personal data and secrets masked
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def _as_text(value: bytes, why: str, *, raw: bool) -> str:
    """A payload that cannot be shown as JSON: as text, redacted as text unless ``raw``
    (before it is cut, so no half value escapes the masks)."""
    text = value.decode("utf-8", errors="replace")
    shown = text if raw else Redactor().text(text)
    return f"{why}, shown as text{'' if raw else ', redacted'}:\n" + _cut(shown)


def print_letter(letter: DeadLetter, markers: Mapping[str, Any], topic: str, *, raw: bool) -> None:
    emit(
        f"dead letter {letter.position} on {topic}, dead-lettered {format_ms(letter.timestamp_ms)}"
    )
    emit(f"key: {letter.ticket}")
    if letter.problem:
        emit(f"context headers unreadable: {letter.problem}")
    emit("context:")
    for name, value in letter.headers:
        if name.startswith(h.ERRORS):
            emit(f"  {name.removeprefix(h.ERRORS):<24} {header_text(value)}")
    others = [(n, v) for n, v in letter.headers if not n.startswith(h.ERRORS)]
    if others:
        emit("other headers:")
        for name, value in others:
            emit(f"  {name:<32} {header_text(value)}")
    marker = markers.get(letter.position)
    if marker:
        emit(
            f"redriven: by {marker.get('redrive_id')} at {format_ms(marker.get('at_ms'))} "
            f"to {marker.get('topic')}[{marker.get('partition')}]"
        )
    if letter.context is not None:
        sent = redrive_record(letter, dead_letter_topic=topic, redrive_id="-", now_ms=0)
        emit(f"a redrive sends it to {sent.topic}[{sent.partition}] as a {how(sent)}")
    emit(
        f"payload, {len(letter.value)} bytes" + ("" if raw else " (--raw shows it unmasked)") + ":"
    )
    emit(payload_text(letter.value, raw=raw))


def print_redrive(report: RedriveReport) -> None:
    verb = "would redrive" if report.dry_run else "redriven"
    for letter, sent in report.redriven:
        emit(f"{letter.position:>10}  {verb} -> {sent.topic}[{sent.partition}] as a {how(sent)}")
    for letter, marker in report.already:
        emit(
            f"{letter.position:>10}  skipped: already redriven by {marker.get('redrive_id')} "
            f"at {format_ms(marker.get('at_ms'))} (--force redrives it again)"
        )
    for letter, reason in report.refused:
        emit(f"{letter.position:>10}  cannot be redriven: {reason}")
    emit(
        f"redrive {report.redrive_id}: {len(report.redriven)} {verb}, {len(report.already)} "
        f"already redriven, {len(report.refused)} cannot be redriven"
        + (" (dry run: nothing was published)" if report.dry_run else "")
    )
