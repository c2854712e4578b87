"""The run-history JSON API (aiohttp); its OpenAPI 3.1 document is :mod:`agents.history.openapi`.

Routes, all under ``/api/`` but the document itself:

==================================  ================================================================
``GET  /api/runs``                  runs, newest first: ``ticket``, ``event``, ``flow``, ``status``,
                                    ``since``/``until`` (ISO 8601 or a duration ago: ``2h``),
                                    ``limit`` (≤500), ``cursor`` (the ``next`` of the page before),
                                    ``include=steps`` (each run's step outputs too)
``GET  /api/runs/{run_id}``         one run and its step outputs (masked)
``GET  /api/runs/{run_id}/steps``   its step outputs alone
``GET  /api/dead-letters``          dead letters, newest first: ``ticket``, ``event``, ``flow``,
                                    ``reason``, ``since``, ``until``, ``limit``, ``cursor``
``GET  /api/index``                 the indexer: positions, counts, retention, errors
``POST /api/index/rebuild``         empty the store and index the topics again (audited)
``GET  /openapi.json``              the OpenAPI 3.1 document
==================================  ================================================================

:func:`create_app` is the whole application (health, metrics, API); a console mounts its own
routes on the app it returns, or calls :func:`add_routes` on an app of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from agents.history.indexer import History, Indexer
from agents.history.openapi import document
from agents.history.store import LetterQuery, QueryError, RunQuery
from agents.observe.health import Health
from agents.observe.http import application, error_response, health_routes, json_response
from agents.ops.slices import parse_time
from agents.settings import HttpSettings
from pipeline.result import RunStatus

RUN_STATUSES = tuple(str(status) for status in RunStatus if status is not RunStatus.NO_MATCH)


def create_app(
    settings: HttpSettings,
    history: History,
    indexer: Indexer,
    *,
    health: Health,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    app = application(settings)
    health_routes(app, health, registry)
    add_routes(app, history, indexer)
    return app


def add_routes(app: web.Application, history: History, indexer: Indexer) -> None:
    store = history.store

    async def runs(request: web.Request) -> web.Response:
        q = request.query
        query = RunQuery(
            ticket=q.get("ticket"),
            event=q.get("event"),
            flow=q.get("flow"),
            status=_one_of(q.get("status"), RUN_STATUSES, "status"),
            since_ms=_time(q.get("since"), "since"),
            until_ms=_time(q.get("until"), "until"),
            limit=_integer(q.get("limit"), "limit", 50),
            cursor=q.get("cursor"),
        )
        include = _one_of(q.get("include"), ("steps",), "include")
        page = await history.call(store.runs, query)
        items = page.items
        if include == "steps":
            steps = await history.call(store.steps, [run["run_id"] for run in items])
            items = [{**run, "step_outputs": steps[run["run_id"]]} for run in items]
        return json_response({"items": items, "next": page.next})

    async def run(request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        found = await history.call(store.run, run_id)
        if found is None:
            return error_response(404, "not_found", f"no run {run_id!r} in the history")
        steps = await history.call(store.steps, [run_id])
        return json_response({**found, "step_outputs": steps[run_id]})

    async def run_steps(request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        if await history.call(store.run, run_id) is None:
            return error_response(404, "not_found", f"no run {run_id!r} in the history")
        steps = await history.call(store.steps, [run_id])
        return json_response({"items": steps[run_id]})

    async def dead_letters(request: web.Request) -> web.Response:
        q = request.query
        query = LetterQuery(
            ticket=q.get("ticket"),
            event=q.get("event"),
            flow=q.get("flow"),
            reason=q.get("reason"),
            since_ms=_time(q.get("since"), "since"),
            until_ms=_time(q.get("until"), "until"),
            limit=_integer(q.get("limit"), "limit", 50),
            cursor=q.get("cursor"),
        )
        page = await history.call(store.dead_letters, query)
        return json_response({"items": page.items, "next": page.next})

    async def index(request: web.Request) -> web.Response:
        counts = await history.call(store.counts)
        return json_response({**indexer.status(), "rows": counts})

    async def rebuild(request: web.Request) -> web.Response:
        indexer.rebuild()
        return json_response({"rebuild": "started"}, 202)

    async def openapi(request: web.Request) -> web.Response:
        return json_response(document())

    for path, handler in (
        ("/api/runs", runs),
        ("/api/runs/{run_id}", run),
        ("/api/runs/{run_id}/steps", run_steps),
        ("/api/dead-letters", dead_letters),
        ("/api/index", index),
        ("/openapi.json", openapi),
    ):
        app.router.add_get(path, _bad_request_as_400(handler))
    app.router.add_post("/api/index/rebuild", rebuild)


Handler = Callable[[web.Request], Any]


def _bad_request_as_400(handler: Callable[[web.Request], Any]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        try:
            response: web.Response = await handler(request)
        except QueryError as error:
            return error_response(400, "bad_request", str(error))
        return response

    return handle


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text, now_ms=int(time.time() * 1000))
    except ValueError as error:
        raise QueryError(f"{name}: {error}") from None


def _integer(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {text!r}") from None


def _one_of(text: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if text is not None and text not in allowed:
        raise QueryError(f"{name} must be one of {', '.join(allowed)}, not {text!r}")
    return text
