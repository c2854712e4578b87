"""``actionflows runs``: what the run-history API knows, on the command line.

It asks the API (``ACTIONFLOWS_API_URL``, with ``ACTIONFLOWS_API_TOKEN``) exactly what a browser
or a script would — ``GET /api/runs?ticket=…&include=steps`` — and prints the answer: with
``--json`` the API's own JSON, otherwise one line per run and one per step beneath it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import orjson

from agents.settings import HistorySettings
from topics.redaction import scrub


class ApiError(Exception):
    """The API could not be reached or refused the request."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="actionflows runs",
        description="Show runs from the run history (`actionflows api` must be running).",
    )
    p.add_argument("--ticket", help="ticket id")
    p.add_argument("--event", help="event id")
    p.add_argument("--flow", help="flow name")
    p.add_argument("--status", help="succeeded, skipped, retry_later, dead_letter …")
    p.add_argument("--since", metavar="TIME", help="ISO 8601 or a duration ago (30m, 2h)")
    p.add_argument("--until", metavar="TIME", help="ISO 8601 or a duration ago")
    p.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    p.add_argument("--no-steps", action="store_true", help="runs only, not their steps")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    p.add_argument("--url", help="the API (default: $ACTIONFLOWS_API_URL)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        settings = HistorySettings.from_env()
    except ValueError as error:
        print(f"actionflows runs: {error}", file=sys.stderr)
        return 2
    query = {
        name: value
        for name, value in (
            ("ticket", args.ticket), ("event", args.event), ("flow", args.flow),
            ("status", args.status), ("since", args.since), ("until", args.until),
            ("include", None if args.no_steps else "steps"),
        )
        if value is not None
    }  # fmt: skip
    token = settings.http.token.get_secret_value() if settings.http.token else None
    try:
        runs = asyncio.run(fetch_runs(args.url or settings.api_url, token, query, args.limit))
    except ApiError as error:
        print(f"actionflows runs: {error}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines(runs):
            print(line)
        if not runs:
            print("no runs match", file=sys.stderr)
    return 0


async def fetch_runs(
    url: str, token: str | None, query: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    """Every run the query matches, following the pages, up to ``limit``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    runs: list[dict[str, Any]] = []
    cursor = None
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while len(runs) < limit:
            params = {**query, "limit": str(min(limit - len(runs), 500))}
            if cursor:
                params["cursor"] = cursor
            page = await _get(session, f"{url}/api/runs", params)
            runs.extend(page["items"])
            cursor = page["next"]
            if not cursor:
                break
    return runs


async def _get(session: aiohttp.ClientSession, url: str, params: Mapping[str, str]) -> Any:
    try:
        async with session.get(url, params=params) as response:
            body = await response.read()
            if response.status != 200:
                try:
                    message = orjson.loads(body).get("message", "")
                except (ValueError, AttributeError):
                    message = body[:200].decode("utf-8", "replace")
                raise ApiError(f"{url} answered {response.status}: {scrub(message)}")
            return orjson.loads(body)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ApiError(f"cannot reach {url}: {error or type(error).__name__}") from None


def lines(runs: list[dict[str, Any]]) -> Iterator[str]:
    """One line per run, then one per step output (when the runs include them)."""
    for run in runs:
        failed = f"  failed at {run['failed_step']}" if run["failed_step"] else ""
        trace = f"  trace {run['trace_id']}" if run["trace_id"] else ""
        yield (
            f"{run['at']}  {run['status']:<11}  {run['flow']} v{run['version']}  "
            f"ticket {run['ticket_id']}  event {run['event_id']}  "
            f"{run['duration_ms']:.1f} ms  attempts {run['attempts']}{failed}{trace}"
        )
        for step in run.get("step_outputs", ()):
            action = step["action"].removeprefix("salesforce.")
            target = f"{action} {step['object']}" if step["object"] else action
            sf_id = f"  {step['salesforce_id']}" if step["salesforce_id"] else ""
            error = f"  error {step['error'].get('message')}" if step["error"] else ""
            outputs = (
                f"  outputs {orjson.dumps(step['outputs']).decode()}" if step["outputs"] else ""
            )
            yield (
                f"    {step['status']:<10} {step['step']}  {target}{sf_id}  "
                f"{step['duration_ms']:.1f} ms{outputs}{error}"
            )
