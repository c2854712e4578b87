"""OpenTelemetry traces: a span per run, per step and per Salesforce call, carried in Kafka headers.

One input record's trace::

    the producer's span (the record's ``traceparent``; absent or invalid: the trace starts below)
    └── <topic> receive            CONSUMER  the record was taken (a marker: no duration)
        └── run <flow>             INTERNAL  one per matching flow, until its result
            └── step <step id>     INTERNAL  one per attempt of a step (Ports.execute)
                └── POST sobjects/Lead  CLIENT  one per HTTP exchange with Salesforce

Every record published for the input carries a ``traceparent`` naming the span it came from
(:meth:`Tracing.headers_for`, handed to :class:`agents.outcomes.Outcomes`): a run's step
outputs, run result, retry and dead letter name the run span; a dead letter published without
a run (a record that does not decode) names the receive span. So a consumer of step outputs,
a retry and a redrive all continue the same trace. ``tracestate`` travels beside it unchanged.

A span context is made of the W3C fields :mod:`topics.tracing` parses and writes; the SDK's
:class:`~opentelemetry.sdk.trace.TracerProvider` makes the ids, samples (``OTEL_TRACES_SAMPLER``,
parent-based by default) and hands finished spans to its processors: an OTLP exporter when
``OTEL_TRACES_EXPORTER=otlp`` (configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables),
nothing otherwise, and an in-memory exporter in tests. The provider is not installed globally,
so several services (and tests) in one process keep their spans apart.

A batched Collections call (:mod:`salesforce.batching`) serves many steps; its client span is a
child of the step whose call opened the batch.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags, TraceState

from agents.observe.logs import log_context
from agents.observer import NullObserver
from pipeline.actions import ActionInput, ActionResult
from pipeline.ports import FlowGateway
from pipeline.result import RunStatus
from pipeline.runner import Executor
from salesforce.calls import CallInfo
from topics.tracing import TRACESTATE, TraceContext, read_trace, trace_headers

if TYPE_CHECKING:
    from agents.outcomes import Inbound
    from pipeline.events import Event
    from pipeline.plan import Plan
    from pipeline.result import RunResult

Headers = list[tuple[str, bytes]]
_Coordinates = tuple[str, int, int]  # topic, partition, offset

# Spans and contexts waiting for the engine's next call about them. Each lives from a run's
# start to its outcomes (one batch at most); the bound only matters for a run abandoned by a
# defect, whose entry is then dropped (and its span ended) instead of kept forever.
_REMEMBERED = 10_000


def provider(*, otlp: bool = False, processors: tuple[SpanProcessor, ...] = ()) -> TracerProvider:
    """A tracer provider for the service: OTLP export when ``otlp``, plus ``processors``.

    The resource takes ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` into account (the
    SDK reads them); the service name defaults to ``actionflows``.
    """
    detected = Resource.create()
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = detected.merge(Resource({"service.name": "actionflows"}))
    else:
        resource = detected
    tracer_provider = TracerProvider(resource=resource)
    # The SDK's sampler (OTEL_TRACES_SAMPLER), in force only once something takes the spans.
    tracer_provider.sampler = UntilExported(tracer_provider.sampler)
    if otlp:
        # Imported only when asked for: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        export(tracer_provider, BatchSpanProcessor(OTLPSpanExporter()))
    for processor in processors:
        export(tracer_provider, processor)
    return tracer_provider


def export(tracer_provider: TracerProvider, processor: SpanProcessor) -> None:
    """Hand the provider's finished spans to ``processor`` too, and start sampling."""
    tracer_provider.add_span_processor(processor)
    if isinstance(tracer_provider.sampler, UntilExported):
        tracer_provider.sampler.exported = True


class UntilExported(Sampler):
    """``sampler`` once spans are exported; until then, a trace the worker starts is not
    sampled (its spans are not recorded: a recorded span costs about five times as much CPU,
    for nothing). The span ids are made all the same, so published records still carry a
    ``traceparent``, and a record whose producer sampled its trace is still sampled."""

    _IDLE = ParentBased(ALWAYS_OFF)

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.exported = False

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        chosen = self.sampler if self.exported else self._IDLE
        return chosen.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"UntilExported{{{self.sampler.get_description()}}}"


K = TypeVar("K")
V = TypeVar("V")


class _Bounded(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``_REMEMBERED``."""

    def remember(self, key: K, value: V) -> V | None:
        self[key] = value
        if len(self) > _REMEMBERED:
            return self.popitem(last=False)[1]
        return None


class Tracing(NullObserver):
    """The service's spans: an :class:`~agents.observer.EngineObserver` for receive and run
    spans, :meth:`traced_execute` for step spans, :meth:`salesforce_call` for client spans, and
    :meth:`headers_for` for the trace headers of published records."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        self.provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("actionflows")
        self._received: _Bounded[_Coordinates, tuple[SpanContext, bytes | None]] = _Bounded()
        self._runs: _Bounded[tuple[_Coordinates, str], SpanContext] = _Bounded()
        self._finishing: _Bounded[tuple[str, str], trace.Span] = _Bounded()
        # How often each step of the run in progress was executed, by step id.
        self._steps: contextvars.ContextVar[dict[str, int]] = contextvars.ContextVar(
            "actionflows_steps"
        )

    # --- trace headers of published records -------------------------------------------------

    def headers_for(self, record: Inbound, flow: str | None) -> Headers:
        """The ``traceparent`` (and ``tracestate``) for records published for ``record``: the
        run span of ``flow`` when it ran, else the record's receive span."""
        received, tracestate = self._receive(record)
        context = self._runs.get((_coordinates(record), flow)) if flow else None
        return _headers(context or received, tracestate)

    def _receive(self, record: Inbound) -> tuple[SpanContext, bytes | None]:
        """The record's receive span (made once): a child of the incoming trace, or a root."""
        key = _coordinates(record)
        known = self._received.get(key)
        if known is not None:
            return known
        incoming = read_trace(record.headers)
        parent = Context()
        tracestate = None
        if incoming is not None:
            tracestate = _last(record.headers, TRACESTATE)
            parent = trace.set_span_in_context(
                NonRecordingSpan(_span_context(incoming, tracestate))
            )
        now = time.time_ns()
        span = self.tracer.start_span(
            f"{record.topic} receive",
            context=parent,
            kind=SpanKind.CONSUMER,
            start_time=now,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "receive",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        )
        span.end(now)  # a marker: the record was taken
        self._received.remember(key, (span.get_span_context(), tracestate))
        return span.get_span_context(), tracestate

    # --- EngineObserver -----------------------------------------------------------------------

    @contextlib.contextmanager
    def run(self, record: Inbound, event: Event, plan: Plan) -> Iterator[None]:
        """The run span, current while the run executes, with the log context of the run."""
        received, _ = self._receive(record)
        span = self.tracer.start_span(
            f"run {plan.name}",
            context=trace.set_span_in_context(NonRecordingSpan(received)),
            attributes={
                "actionflows.flow": plan.name,
                "actionflows.flow.version": plan.version,
                "actionflows.event.id": event.id,
                "actionflows.event.type": event.type,
                "actionflows.ticket.id": event.ticket_id,
            },
        )
        context = span.get_span_context()
        self._runs.remember((_coordinates(record), plan.name), context)
        token = self._steps.set({})
        try:
            with (
                trace.use_span(span, end_on_exit=False),
                log_context(
                    event_id=event.id,
                    ticket=event.ticket_id,
                    flow=plan.name,
                    trace_id=trace.format_trace_id(context.trace_id),
                ),
            ):
                yield
        except BaseException:
            span.end()  # use_span recorded the exception and set the error status
            raise
        finally:
            self._steps.reset(token)
        # Ended by run_finished, which knows how the run ended.
        if (stale := self._finishing.remember((event.id, plan.name), span)) is not None:
            stale.end()

    def run_finished(self, plan: Plan, result: RunResult, elapsed_s: float) -> None:
        span = self._finishing.pop((result.event_id, plan.name), None)
        if span is None:
            return
        span.set_attribute("actionflows.run.status", str(result.status))
        if result.failed_step:
            span.set_attribute("actionflows.run.failed_step", result.failed_step)
        if result.status is RunStatus.DEAD_LETTER:
            span.set_status(Status(StatusCode.ERROR, result.reason))
        span.end()

    def paused(self, cause: str) -> None:
        """Marks the run that met the pause; the run span's length shows how long it held."""
        trace.get_current_span().add_event("paused", {"actionflows.pause.cause": cause})

    # --- steps and Salesforce calls -------------------------------------------------------------

    def traced_execute(
        self, inner: Executor, on_retry: Callable[[ActionInput], None] | None = None
    ) -> Executor:
        """``inner`` (the runner's executor) inside a step span and the step's log context.
        A step executed again in the same run (an in-process retry) calls ``on_retry``."""

        async def execute(action: ActionInput, gateway: FlowGateway) -> ActionResult:
            step = action.step or action.kind
            attempts = self._steps.get({})
            attempt = attempts[step] = attempts.get(step, 0) + 1
            if attempt > 1 and on_retry is not None:
                on_retry(action)
            if not trace.get_current_span().is_recording():
                # The run is not sampled, so neither would its step be (a child of an unsampled
                # span is not sampled): skip making a span nobody records.
                with log_context(step=step):
                    return await inner(action, gateway)
            with (
                self.tracer.start_as_current_span(
                    f"step {step}",
                    attributes={
                        "actionflows.step": step,
                        "actionflows.step.attempt": attempt,
                        "actionflows.action": action.kind,
                        "actionflows.object": action.object,
                    },
                ) as span,
                log_context(step=step),
            ):
                result = await inner(action, gateway)
                if result.salesforce_id:
                    span.set_attribute("actionflows.salesforce.id", result.salesforce_id)
                return result

        return execute

    def salesforce_call(self, call: CallInfo) -> None:
        """A client span for one HTTP exchange, a child of the span current in the caller."""
        if not trace.get_current_span().is_recording():
            return  # the caller's trace is not sampled: the call's span would not be either
        start_ns = int(call.started_at * 1e9)
        span = self.tracer.start_span(
            f"{call.method} {call.resource}",
            kind=SpanKind.CLIENT,
            start_time=start_ns,
            attributes={
                "http.request.method": call.method,
                "actionflows.salesforce.resource": call.resource,
                **({"http.response.status_code": call.status} if call.status else {}),
            },
        )
        if call.status is None or call.status >= 400:
            span.set_status(Status(StatusCode.ERROR))
        span.end(start_ns + int(call.duration_s * 1e9))

    def shutdown(self) -> None:
        """Export what is buffered and stop the processors."""
        self.provider.shutdown()


def _coordinates(record: Inbound) -> _Coordinates:
    return record.topic, record.partition, record.offset


def _last(headers: tuple[tuple[str, bytes], ...], name: str) -> bytes | None:
    values = [value for key, value in headers if key == name]
    return values[-1] if values else None


def _span_context(incoming: TraceContext, tracestate: bytes | None) -> SpanContext:
    state = TraceState.from_header([tracestate.decode("ascii", "replace")]) if tracestate else None
    return SpanContext(
        trace_id=int(incoming.trace_id, 16),
        span_id=int(incoming.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(incoming.flags),
        trace_state=state,
    )


def _headers(context: SpanContext, tracestate: bytes | None) -> Headers:
    own = TraceContext(
        trace.format_trace_id(context.trace_id),
        trace.format_span_id(context.span_id),
        int(context.trace_flags),
    )
    return trace_headers(own, tracestate)
