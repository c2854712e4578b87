"""The OTLP exporter: off by default, on with OTEL_TRACES_EXPORTER=otlp, configured by OTEL_*."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from agents.observe.tracing import export, provider
from agents.settings import ObserveSettings


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    """An OTLP/HTTP receiver on a free local port, in a thread (the exporter blocks)."""
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_export_is_off_unless_asked_for() -> None:
    assert ObserveSettings.from_env({}).otlp is False
    assert ObserveSettings.from_env({"OTEL_TRACES_EXPORTER": "none"}).otlp is False
    assert ObserveSettings.from_env({"OTEL_TRACES_EXPORTER": "otlp"}).otlp is True
    assert (
        ObserveSettings.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}).otlp
        is False
    )
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        ObserveSettings.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_spans_reach_the_endpoint_the_standard_variables_name(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME are read by the SDK: a span posted as
    protobuf to <endpoint>/v1/traces under that service name."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "actionflows-test")
    tracer_provider = provider(otlp=True)
    with tracer_provider.get_tracer("test").start_as_current_span("run create-lead"):
        pass
    assert tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    (path, body), *_ = _Collector.received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "actionflows-test"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["run create-lead"]


def test_without_export_nothing_is_sent(collector: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the same span with the default provider posts nothing."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    tracer_provider = provider()
    with tracer_provider.get_tracer("test").start_as_current_span("run create-lead"):
        pass
    assert tracer_provider.force_flush(10_000)
    tracer_provider.shutdown()
    assert _Collector.received == []
    assert tracer_provider.resource.attributes["service.name"] == "actionflows"


def test_until_spans_are_exported_a_trace_started_here_is_not_recorded() -> None:
    """Nothing takes the spans: a root span is not recorded (the CPU is saved) but still has
    ids to propagate; a sampled parent is still honoured. Once exported, roots are recorded."""
    tracer_provider = provider()
    tracer = tracer_provider.get_tracer("test")
    root = tracer.start_span("run create-lead")
    assert not root.is_recording()
    assert root.get_span_context().is_valid
    sampled = SpanContext(0x1F, 0x2F, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    child = tracer.start_span("run x", context=set_span_in_context(NonRecordingSpan(sampled)))
    assert child.is_recording()
    spans = InMemorySpanExporter()
    export(tracer_provider, SimpleSpanProcessor(spans))
    tracer.start_span("run create-lead").end()
    assert [s.name for s in spans.get_finished_spans()] == ["run create-lead"]
