"""An engine with the observability parts wired as the service wires them, but no broker: a
fake Salesforce, an in-memory ledger, a list as the publisher, spans in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.engine import Engine
from agents.observe import Observability
from agents.observe.metrics import Metrics
from agents.observe.tracing import Tracing, export
from agents.outcomes import Inbound, Outcomes
from agents.settings import ObserveSettings
from pipeline.ledger import InMemoryLedger
from pipeline.loader import load_flows
from pipeline.runner import Ports
from tests.agents.test_engine import CREATE_LEAD_FLOW, FakeClock, ListPublisher, run_records
from tests.pipeline.catalogue_fakes import FakeSalesforce
from topics.catalogue import Catalogue, CatalogueSettings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()


@dataclass
class Observed:
    engine: Engine
    gateway: FakeSalesforce
    publisher: ListPublisher
    metrics: Metrics
    tracing: Tracing
    spans: InMemorySpanExporter

    async def handle(self, records: list[Inbound]) -> None:
        """Run records through the engine as the worker does."""
        await run_records(self.engine, records)

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def finished(self) -> list:  # type: ignore[type-arg]
        return list(self.spans.get_finished_spans())


def observed_engine(
    tmp_path: Path, flow: str = CREATE_LEAD_FLOW, *, traced: bool = True
) -> Observed:
    """``traced=False``: the engine's default outcomes (input trace headers copied), the
    negative control for the trace headers."""
    (tmp_path / "flow.yaml").write_text(flow)
    catalogue = Catalogue.build(CatalogueSettings(retry_delays_ms=(1000, 5000)))
    # No faust app and no broker: nothing here scrapes the consumer or asks for readiness.
    observability = Observability(
        ObserveSettings(), app=SimpleNamespace(_consumer=None), bootstrap_servers="127.0.0.1:9"
    )
    spans = InMemorySpanExporter()
    export(observability.tracing.provider, SimpleSpanProcessor(spans))
    gateway = FakeSalesforce()
    publisher = ListPublisher()
    engine = Engine(
        flows=load_flows(tmp_path),
        catalogue=catalogue,
        ports=observability.wrap_ports(
            Ports(gateway=gateway, ledger=InMemoryLedger(), clock=FakeClock())
        ),
        publisher=publisher,
        observer=observability.observer,
    )
    if traced:
        engine.outcomes = Outcomes(catalogue, trace=observability.tracing.headers_for)
    return Observed(engine, gateway, publisher, observability.metrics, observability.tracing, spans)
