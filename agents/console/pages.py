"""The console's read-only pages: the connection indicator, flows, runs and one run, live.

Each handler gathers plain data from where it already lives (the indicator of
:mod:`salesforce.indicator`, the flow files through :mod:`pipeline.loader`, the run history's
store, the workers' metrics) and hands it to a template; none writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from agents.console.connection import Indicator
from agents.console.live import Sampler
from agents.console.render import Templates
from agents.history.api import RUN_STATUSES
from agents.history.indexer import History, Indexer
from agents.history.store import QueryError, RunQuery
from pipeline.errors import FlowError
from pipeline.flows import FlowDefinition
from pipeline.loader import flow_files, read_flow_file, validate_directory
from salesforce.indicator import ActionAvailability

RECENT_RUNS = 5  # last runs shown per flow
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class FlowFile:
    """One flow file as the flows page shows it: its definition if it has a valid shape, and
    every error the worker would refuse it for (each names the file and the path in it)."""

    name: str
    definition: FlowDefinition | None
    errors: tuple[FlowError, ...]
    runs: list[dict[str, Any]] = field(default_factory=list)


def flow_listing(directory: Path) -> list[FlowFile]:
    errors: dict[str, list[FlowError]] = {}
    for error in validate_directory(directory):
        errors.setdefault(error.file, []).append(error)
    return [
        FlowFile(path.name, read_flow_file(path).definition, tuple(errors.get(str(path), ())))
        for path in flow_files(directory)
    ]


def actions_by_object(
    actions: tuple[ActionAvailability, ...],
) -> tuple[list[str], dict[str, dict[str, ActionAvailability]]]:
    """The indicator's actions (``"create lead"``…) as a table: kinds across, objects down."""
    kinds: list[str] = []
    table: dict[str, dict[str, ActionAvailability]] = {}
    for action in actions:
        kind, _, obj = action.name.partition(" ")
        if kind not in kinds:
            kinds.append(kind)
        table.setdefault(obj or "-", {})[kind] = action
    return kinds, table


class Pages:
    def __init__(
        self,
        templates: Templates,
        history: History,
        indexer: Indexer,
        indicator: Indicator,
        sampler: Sampler,
        flows_dir: Path,
    ) -> None:
        self.templates = templates
        self.history = history
        self.indexer = indexer
        self.indicator = indicator
        self.sampler = sampler
        self.flows_dir = flows_dir

    async def connection(self, request: web.Request) -> web.Response:
        checked = await self.indicator.get(refresh="refresh" in request.query)
        kinds, objects = actions_by_object(checked.indicator.actions if checked else ())
        return self.templates.page(
            request,
            "connection.html",
            checked=checked,
            problem=self.indicator.problem,
            kinds=kinds,
            objects=objects,
        )

    async def flows(self, request: web.Request) -> web.Response:
        if not self.flows_dir.is_dir():
            return self.templates.page(
                request, "flows.html", folder=str(self.flows_dir), files=None
            )
        files = flow_listing(self.flows_dir)
        store = self.history.store
        for item in files:
            if item.definition is not None:
                query = RunQuery(flow=item.definition.name, limit=RECENT_RUNS)
                item.runs.extend((await self.history.call(store.runs, query)).items)
        return self.templates.page(request, "flows.html", folder=str(self.flows_dir), files=files)

    async def runs(self, request: web.Request) -> web.Response:
        filters = search_fields(request.query, ("ticket", "event", "flow", "status"))
        status = filters.get("status")
        error = None
        page = None
        if status is not None and status not in RUN_STATUSES:
            error = f"status must be one of {', '.join(RUN_STATUSES)}"
        else:
            query = RunQuery(
                ticket=filters.get("ticket"),
                event=filters.get("event"),
                flow=filters.get("flow"),
                status=status,
                limit=PAGE_SIZE,
                cursor=request.query.get("cursor"),
            )
            try:
                page = await self.history.call(self.history.store.runs, query)
            except QueryError as problem:
                error = str(problem)
        return self.templates.page(
            request,
            "runs.html",
            status=400 if error else 200,
            filters=filters,
            statuses=RUN_STATUSES,
            page=page,
            error=error,
        )

    async def run(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        store = self.history.store
        found = await self.history.call(store.run, run_id)
        if found is None:
            return self.templates.page(
                request,
                "message.html",
                status=404,
                title="Run not found",
                message=f"No run {run_id} in the history (it may have left the topics).",
            )
        steps = (await self.history.call(store.steps, [run_id]))[run_id]
        return self.templates.page(request, "run.html", run=found, steps=steps)

    async def live(self, request: web.Request) -> web.Response:
        workers = self.sampler.view()
        rates = [w.events_per_s for w in workers if w.events_per_s is not None]
        latest = [w.latest for w in workers if w.latest is not None]
        totals = {
            "events_per_s": sum(rates) if rates else None,
            "lag": sum(s.total_lag for s in latest) if latest else None,
            "in_flight": sum(s.in_flight for s in latest) if latest else None,
            "paused": sorted({cause for s in latest for cause in s.paused}),
        }
        counts = await self.history.call(self.history.store.counts)
        return self.templates.page(
            request,
            "live.html",
            workers=workers,
            totals=totals,
            every_s=self.sampler.every_s,
            indexer=self.indexer.status(),
            counts=counts,
        )


def search_fields(query: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The non-empty search fields of a query string (an empty field means "any")."""
    return {name: query[name].strip() for name in names if query.get(name, "").strip()}
