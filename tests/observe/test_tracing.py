"""Spans per record, run, step and Salesforce call, and the trace context on published records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from agents.outcomes import Inbound
from salesforce.calls import CallInfo
from tests.agents.test_engine import inbound, ticket_created
from tests.observe.harness import PARENT_ID, TRACE_ID, TRACEPARENT, observed_engine
from tests.pipeline.catalogue_fakes import FakeRejected, FakeUnavailable
from topics.tracing import read_trace


def _hex(span_id: int) -> str:
    return trace.format_span_id(span_id)


def _with(record: Inbound, *headers: tuple[str, bytes]) -> Inbound:
    return Inbound(
        record.topic, record.partition, record.offset, record.timestamp_ms, record.key,
        record.value, tuple(headers),
    )  # fmt: skip


TRACED = _with(
    inbound(ticket_created("e1", "T1", "ada@example.com")),
    ("traceparent", TRACEPARENT),
    ("tracestate", b"vendor=1"),
)


async def test_an_incoming_traceparent_is_continued_by_the_run_and_its_steps(
    tmp_path: Path,
) -> None:
    """receive → run → steps, all in the producer's trace, under the producer's span."""
    o = observed_engine(tmp_path)
    record = TRACED
    await o.handle([record])
    spans = {span.name: span for span in o.finished()}
    assert set(spans) == {
        "actionflows.tickets receive", "run create-lead", "step find_lead", "step create_lead",
    }  # fmt: skip
    assert {trace.format_trace_id(s.context.trace_id) for s in spans.values()} == {TRACE_ID}
    receive, run = spans["actionflows.tickets receive"], spans["run create-lead"]
    assert _hex(receive.parent.span_id) == PARENT_ID
    assert receive.kind is SpanKind.CONSUMER
    assert run.parent.span_id == receive.context.span_id
    for step in ("find_lead", "create_lead"):
        assert spans[f"step {step}"].parent.span_id == run.context.span_id
        assert spans[f"step {step}"].attributes["actionflows.step"] == step
    assert run.attributes["actionflows.run.status"] == "succeeded"
    assert run.attributes["actionflows.ticket.id"] == "T1"


async def test_every_output_record_names_the_run_span(tmp_path: Path) -> None:
    """Step outputs and the run result carry traceparent = (the input's trace, the run span)."""
    o = observed_engine(tmp_path)
    record = TRACED
    await o.handle([record])
    run = next(s for s in o.finished() if s.name == "run create-lead")
    assert len(o.publisher.records) == 3
    for out in o.publisher.records:
        context = read_trace(out.headers)
        assert context is not None, out.topic
        assert (context.trace_id, context.parent_id) == (TRACE_ID, _hex(run.context.span_id))
        assert ("tracestate", b"vendor=1") in out.headers


async def test_a_record_without_traceparent_starts_a_trace(tmp_path: Path) -> None:
    """No (or an invalid) traceparent: the receive span is a root; each record its own trace."""
    o = observed_engine(tmp_path)
    first = inbound(ticket_created("e1", "T1", "a@example.com"), offset=1)
    second = _with(
        inbound(ticket_created("e2", "T2", "b@example.com"), offset=2),
        ("traceparent", b"00-not-a-trace-01"),
        ("tracestate", b"dropped=1"),
    )
    await o.handle([first, second])
    receives = [s for s in o.finished() if s.name.endswith(" receive")]
    assert len(receives) == 2
    assert all(span.parent is None for span in receives)
    assert len({span.context.trace_id for span in receives}) == 2
    for out in o.publisher.records:
        context = read_trace(out.headers)
        assert context is not None
        assert context.trace_id in {trace.format_trace_id(s.context.trace_id) for s in receives}
        assert all(name != "tracestate" for name, _ in out.headers)


async def test_without_the_trace_source_outputs_get_no_trace(tmp_path: Path) -> None:
    """Negative control: the engine's default outcomes only copy the input's trace headers, so
    without the tracing source a record without traceparent yields outputs without one."""
    o = observed_engine(tmp_path, traced=False)
    await o.handle([inbound(ticket_created("e1", "T1", "a@example.com"))])
    assert o.publisher.records
    assert all(read_trace(out.headers) is None for out in o.publisher.records)


async def test_dead_letters_carry_the_span_they_came_from(tmp_path: Path) -> None:
    """A decode failure names the receive span; a failed run's dead letter names the run."""
    o = observed_engine(tmp_path)
    o.gateway.failures["create"] = FakeRejected("bad", error_code="FIELD_CUSTOM_VALIDATION")
    await o.handle([
        _with(inbound(b"{not json", offset=1), ("traceparent", TRACEPARENT)),
        inbound(ticket_created("e2", "T2", "b@example.com"), offset=2),
    ])  # fmt: skip
    spans = o.finished()
    letters = o.publisher.on("actionflows.dead-letters")
    assert len(letters) == 2
    by_offset = {
        s.attributes["messaging.kafka.offset"]: s for s in spans if s.name.endswith(" receive")
    }
    undecodable = read_trace(letters[0].headers)
    assert undecodable is not None
    assert undecodable.parent_id == _hex(by_offset[1].context.span_id)
    assert undecodable.trace_id == TRACE_ID
    run = next(s for s in spans if s.name == "run create-lead")
    failed = read_trace(letters[1].headers)
    assert failed is not None
    assert failed.parent_id == _hex(run.context.span_id)
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["actionflows.run.failed_step"] == "create_lead"


async def test_a_retry_continues_the_trace_of_the_run_that_parked_it(tmp_path: Path) -> None:
    """The retry record names the failed run's span; its own run is a descendant of it."""
    o = observed_engine(tmp_path)
    outage = FakeUnavailable("down", error_code="SERVER_UNAVAILABLE")

    async def failing(*args: object) -> None:
        raise outage

    o.gateway.upsert = o.gateway.create = failing  # type: ignore[method-assign]
    await o.handle([inbound(ticket_created("e1", "T1", "a@example.com"), offset=3)])
    (retry,) = o.publisher.on("actionflows.retry.1s")
    del o.gateway.upsert, o.gateway.create
    first_run = next(s for s in o.finished() if s.name == "run create-lead")
    parked = read_trace(retry.headers)
    assert parked is not None
    assert parked.parent_id == _hex(first_run.context.span_id)
    await o.handle(
        [Inbound("actionflows.retry.1s", 0, 0, None, retry.key, retry.value, tuple(retry.headers))]
    )
    spans = o.finished()
    receive = next(s for s in spans if s.name == "actionflows.retry.1s receive")
    assert receive.parent.span_id == first_run.context.span_id
    assert receive.context.trace_id == first_run.context.trace_id
    runs = [s for s in spans if s.name == "run create-lead"]
    assert [s.attributes["actionflows.run.status"] for s in runs] == ["retry_later", "succeeded"]


async def test_salesforce_calls_are_client_spans_of_the_step(tmp_path: Path) -> None:
    """A call reported while a step runs becomes a CLIENT span under that step's span."""
    o = observed_engine(tmp_path)
    query = o.gateway.query

    async def reporting_query(soql: str) -> list:  # type: ignore[type-arg]
        o.tracing.salesforce_call(CallInfo("GET", "query", 503, 1_800_000_000.0, 0.25))
        o.tracing.salesforce_call(CallInfo("GET", "query", 200, 1_800_000_000.5, 0.05))
        return await query(soql)

    o.gateway.query = reporting_query  # type: ignore[method-assign]
    await o.handle([inbound(ticket_created("e1", "T1", "a@example.com"))])
    spans = o.finished()
    step = next(s for s in spans if s.name == "step find_lead")
    calls = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [c.name for c in calls] == ["GET query", "GET query"]
    assert all(c.parent.span_id == step.context.span_id for c in calls)
    assert calls[0].status.status_code is StatusCode.ERROR
    assert calls[1].attributes["http.response.status_code"] == 200
    assert calls[0].end_time - calls[0].start_time == pytest.approx(250_000_000, rel=1e-3)


async def test_logs_made_during_a_step_name_the_event_ticket_flow_step_and_trace(
    tmp_path: Path,
) -> None:
    """The run's log context reaches code the step calls (the gateway, the client)."""
    from agents.observe.logs import current_context

    o = observed_engine(tmp_path)
    seen = []
    create = o.gateway.create

    async def logging_create(sobject: str, fields: dict) -> str:  # type: ignore[type-arg]
        seen.append(dict(current_context()))
        logging.getLogger("test").info("creating")
        return await create(sobject, fields)

    o.gateway.create = logging_create  # type: ignore[method-assign]
    record = _with(
        inbound(ticket_created("e1", "T1", "a@example.com")), ("traceparent", TRACEPARENT)
    )
    await o.handle([record])
    assert seen == [
        {"event_id": "e1", "ticket": "T1", "flow": "create-lead", "trace_id": TRACE_ID,
         "step": "create_lead"},
    ]  # fmt: skip


async def test_an_unsampled_trace_makes_no_step_or_call_spans_but_keeps_its_context(
    tmp_path: Path,
) -> None:
    """A trace its producer did not sample: the run is not recorded, so its steps and calls
    make no span at all; the outputs still carry the trace, and logs still name the step.
    (The sampled test above is the control: the same flow records its step spans.)"""
    from agents.observe.logs import current_context

    o = observed_engine(tmp_path)
    seen = []
    create = o.gateway.create

    async def reporting_create(sobject: str, fields: dict) -> str:  # type: ignore[type-arg]
        seen.append(current_context().get("step"))
        o.tracing.salesforce_call(CallInfo("POST", "composite/sobjects", 200, 1.8e9, 0.05))
        return await create(sobject, fields)

    o.gateway.create = reporting_create  # type: ignore[method-assign]
    unsampled = TRACEPARENT[:-2] + b"00"
    await o.handle(
        [_with(inbound(ticket_created("e1", "T1", "a@example.com")), ("traceparent", unsampled))]
    )
    assert o.finished() == []
    assert seen == ["create_lead"]
    for out in o.publisher.records:
        context = read_trace(out.headers)
        assert context is not None
        assert context.trace_id == TRACE_ID
