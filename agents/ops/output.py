"""What the operator tools print: replay plans and summaries, dead letters. Nothing here reaches
Kafka.

Personal data and secrets are masked unless ``--raw``: planned writes and letter payloads through
:func:`topics.redaction.redact`, header values through :func:`topics.redaction.scrub`. A payload
that is not a JSON object cannot be redacted field by field; it is shown scrubbed and truncated.
With ``--json`` stdout carries JSON lines only and operator notes go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console

from agents.ops.common import format_ms
from agents.ops.dry_run import EventPlan
from agents.ops.letters import DeadLetter, how, redrive_record
from topics import headers as h
from topics.redaction import redact, scrub

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


def say(args: argparse.Namespace, text: str) -> None:
    """A line for the operator: on stdout, or on stderr when stdout carries JSON lines."""
    print(text, file=sys.stderr if args.json else sys.stdout)


def printer(*, raw: bool) -> Callable[[EventPlan], None]:
    def show(plan: EventPlan) -> None:
        event = plan.event
        if event is None:
            print(f"{plan.position}  does not decode ({plan.error}): the engine dead-letters it")
            return
        print(f"{plan.position}  event {event.id}  ticket {event.ticket_id}  {event.type}")
        if not plan.flows:
            print("    no flow matches")
        for flow in plan.flows:
            ending = f"would {ENDINGS.get(flow.status, flow.status)}"
            if flow.failed_step:
                ending += f" at {flow.failed_step} ({flow.reason})"
            print(f"    {flow.flow} v{flow.version}: {ending}")
            if flow.reused:
                print(f"        already done (reused from the ledger): {', '.join(flow.reused)}")
            for write in flow.writes:
                values = ", ".join(f"{k}={v!r}" for k, v in write.shown(raw=raw).items())
                print(f"        {write.step}: {write.label}  {values}")

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
        print(orjson.dumps(line).decode())

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
        print("\n".join(_replay_lines(report)))
        return
    print(
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
            print(f"replay: {done}/{total} records read ({rate:.0f}/s)", file=sys.stderr)


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
