"""What ``actionflows replay`` prints: each planned event, the summary, progress on stderr.

Planned writes show personal data and secrets masked (:func:`topics.redaction.redact`) unless
``--raw``; with ``--json`` stdout carries JSON lines only and operator notes go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import orjson
from rich.console import Console

from agents.ops.dry_run import EventPlan
from agents.ops.republish import Progress, ReplayReport

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


def _summary(report: ReplayReport) -> Iterator[str]:
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
        print("\n".join(_summary(report)))
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
