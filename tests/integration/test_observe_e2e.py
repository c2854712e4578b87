"""One event through the whole system, seen from outside: produced with a traceparent, run by the
worker against the emulator, counted in the worker's /metrics, shown by the history API and by
`actionflows runs`, and traced from the record to each Salesforce call."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from agents.cli import main as cli
from agents.history.service import HistoryService
from agents.observe.tracing import export
from agents.service import Service, ServiceConfig
from agents.settings import HistorySettings, HttpSettings, ObserveSettings
from sfemulator import Emulator, EmulatorConfig
from tests.agents.test_engine import CREATE_LEAD_FLOW, ticket_created
from tests.integration.test_engine_e2e import service_config
from tests.kafkatools import read, wait_for
from topics.catalogue import Catalogue
from topics.tracing import read_trace

TOKEN = "e2e-observability-token"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01".encode()


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=3)) as emu:
        yield emu


def observed_config(kafka: str, unique: str, flows: Path, emu: Emulator) -> ServiceConfig:
    """A worker with its HTTP endpoints on a free loopback port, guarded by TOKEN."""
    observe = ObserveSettings(http=HttpSettings(port=0, token=SecretStr(TOKEN)))
    return dataclasses.replace(service_config(kafka, unique, flows, emu), observe=observe)


def spans_of(service: Service) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    export(service.observability.tracing.provider, SimpleSpanProcessor(exporter))
    return exporter


async def get(url: str, **params: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(url, params=params) as response,
    ):
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, orjson.loads(body)
        return response.status, body.decode()


def sample(metrics: str, name: str, **labels: str) -> float:
    """A sample's value from the exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if match and match.group(1) == name:
            found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if found == wanted:
                return float(match.group(3))
    return 0.0


async def test_one_event_through_the_whole_system(
    kafka: str,
    unique: str,
    tmp_path: Path,
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "create-lead.yaml").write_text(CREATE_LEAD_FLOW)
    config = observed_config(kafka, unique, flows, emulator)
    prefix = config.topics.prefix
    async with Service(config) as service:
        spans = spans_of(service)
        assert service.observability.server is not None
        worker = service.observability.server.url
        _, before = await get(worker + "/metrics")
        history_settings = HistorySettings(
            database=tmp_path / "history.sqlite3",
            http=HttpSettings(port=0, token=SecretStr(TOKEN)),
            api_url="",
        )
        catalogue = Catalogue.build(config.topics)
        async with HistoryService(
            history_settings, bootstrap_servers=kafka, catalogue=catalogue
        ) as history:
            producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
            await producer.start()
            try:
                await producer.send_and_wait(
                    f"{prefix}.tickets",
                    ticket_created("evt-35436", "35436", "ada@example.com"),
                    key=b"35436",
                    headers=[("traceparent", TRACEPARENT)],
                )
            finally:
                await producer.stop()

            # runs: the run result is on its topic, carrying the trace
            (result,) = await read(kafka, f"{prefix}.run-results", 1, timeout_s=60)
            assert orjson.loads(result.value)["status"] == "succeeded"
            carried = read_trace(result.headers)
            assert carried is not None
            assert carried.trace_id == TRACE_ID

            # metrics change
            _, after = await get(worker + "/metrics")
            runs = {"flow": "create-lead", "status": "succeeded"}
            assert sample(before, "actionflows_runs_total", **runs) == 0
            assert sample(after, "actionflows_runs_total", **runs) == 1
            tickets = f"{prefix}.tickets"
            assert (
                sample(after, "actionflows_events_in_total", topic=tickets, type="ticket.created")
                == 1
            )
            calls = [
                line
                for line in after.splitlines()
                if line.startswith("actionflows_salesforce_calls_total{")
            ]
            assert any('resource="query"' in line for line in calls), calls
            assert sample(after, "actionflows_salesforce_api_used") > 0

            # the history API shows it
            async def shown() -> Any:
                _, page = await get(history.url + "/api/runs", ticket="35436", include="steps")
                return page["items"]

            (run,) = await wait_for(shown, timeout_s=60, what="the run in the history API")
            assert (run["status"], run["event_id"], run["trace_id"]) == (
                "succeeded", "evt-35436", TRACE_ID,
            )  # fmt: skip
            assert [s["step"] for s in run["step_outputs"]] == ["find_lead", "create_lead"]
            assert run["step_outputs"][1]["salesforce_id"] == emulator.records("Lead")[0]["Id"]

            # ... and so does `actionflows runs`
            monkeypatch.setenv("ACTIONFLOWS_API_TOKEN", TOKEN)
            code = await asyncio.to_thread(
                cli, ["runs", "--ticket", "35436", "--url", history.url, "--json"]
            )
            assert code == 0
            assert orjson.loads(capsys.readouterr().out) == [run]
            code = await asyncio.to_thread(cli, ["runs", "--ticket", "35436", "--url", history.url])
            printed = capsys.readouterr().out
            assert code == 0
            assert "succeeded" in printed
            assert "create-lead v1  ticket 35436  event evt-35436" in printed
            assert "create_lead  create_record lead" in printed

        # its trace has the expected spans
        finished = [
            s for s in spans.get_finished_spans() if s.context.trace_id == int(TRACE_ID, 16)
        ]
        by_name = {s.name: s for s in finished}
        receive = by_name[f"{tickets} receive"]
        run_span = by_name["run create-lead"]
        find, create = by_name["step find_lead"], by_name["step create_lead"]
        assert trace.format_span_id(receive.parent.span_id) == "b7ad6b7169203331"
        assert run_span.parent.span_id == receive.context.span_id
        assert find.parent.span_id == create.parent.span_id == run_span.context.span_id
        assert carried.parent_id == trace.format_span_id(run_span.context.span_id)
        clients = [s for s in finished if s.kind is SpanKind.CLIENT]
        under = {s.parent.span_id for s in clients}
        assert find.context.span_id in under
        assert create.context.span_id in under
        assert any(s.name == "GET query" for s in clients)
