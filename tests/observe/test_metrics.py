"""The worker's Prometheus metrics, fed by the engine, the Salesforce client and scrape-time reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from agents.observe.metrics import (
    MAX_LABEL_VALUES,
    Metrics,
    budget_collector,
    consumer_collector,
    label,
    pause_cause,
)
from salesforce.budget import BudgetGovernor
from salesforce.calls import CallInfo
from salesforce.errors import InvalidGrantError
from salesforce.limits import ApiUsage, Usage
from tests.agents.test_engine import inbound, ticket_created
from tests.observe.harness import observed_engine
from tests.pipeline.catalogue_fakes import FakeRejected, FakeUnavailable

NO_MATCH = b'{"id": "e9", "type": "ticket.solved", "ticket": {"id": "T9"}}'


async def test_the_engine_feeds_events_runs_steps_no_match_and_dead_letters(
    tmp_path: Path,
) -> None:
    """One batch: counters by topic and type, runs by flow and status, step histograms."""
    o = observed_engine(tmp_path)
    o.gateway.failures["create"] = FakeRejected("bad", error_code="FIELD_CUSTOM_VALIDATION")
    await o.handle([
        inbound(ticket_created("e1", "T1", "a@example.com"), offset=1),
        inbound(ticket_created("e2", "T2", "b@example.com"), offset=2),
        inbound(NO_MATCH, offset=3),
        inbound(b"{not json", offset=4),
    ])  # fmt: skip
    topic = "actionflows.tickets"
    assert o.sample("actionflows_records_in_total", topic=topic) == 4
    assert o.sample("actionflows_events_in_total", topic=topic, type="ticket.created") == 2
    assert o.sample("actionflows_events_in_total", topic=topic, type="ticket.solved") == 1
    assert o.sample("actionflows_no_match_total", topic=topic, type="ticket.solved") == 1
    assert o.sample("actionflows_runs_total", flow="create-lead", status="succeeded") == 1
    assert o.sample("actionflows_runs_total", flow="create-lead", status="dead_letter") == 1
    # The reason label is the dead letter's own actionflows.errors.reason code.
    assert o.sample("actionflows_dead_letters_total", reason="decode.malformed_json") == 1
    reason = "salesforce.FIELD_CUSTOM_VALIDATION"
    assert o.sample("actionflows_dead_letters_total", reason=reason) == 1
    find = {"action": "salesforce.find_record", "object": "lead"}
    create = {"action": "salesforce.create_record", "object": "lead"}
    assert o.sample("actionflows_step_duration_seconds_count", **find) == 2
    assert o.sample("actionflows_step_duration_seconds_count", **create) == 2
    assert o.sample("actionflows_steps_total", **create, status="failed") == 1
    assert o.sample("actionflows_run_duration_seconds_count", flow="create-lead") == 2
    assert o.sample("actionflows_in_flight_events") == 0


async def test_a_pause_shows_its_cause_while_it_lasts(tmp_path: Path) -> None:
    """A refused login holds the run: paused{cause="login_refused"} is 1, then 0 again."""
    o = observed_engine(tmp_path)
    o.gateway.failures["query"] = InvalidGrantError("not approved", error_code="invalid_grant")
    during: list[float] = []
    sleep = o.engine.ports.clock.sleep

    async def watching_sleep(seconds: float) -> None:
        during.append(o.sample("actionflows_paused", cause="login_refused"))
        await sleep(seconds)

    o.engine.ports.clock.sleep = watching_sleep  # type: ignore[method-assign]
    await o.handle([inbound(ticket_created("e1", "T1", "a@example.com"))])
    assert during[:1] == [1]
    assert o.sample("actionflows_paused", cause="login_refused") == 0
    assert o.sample("actionflows_pauses_total", cause="login_refused") == 1
    assert o.sample("actionflows_runs_total", flow="create-lead", status="succeeded") == 1


async def test_overlapping_pauses_of_one_cause_end_with_the_last() -> None:
    """Two runs held at once: the gauge stays 1 until both resume."""
    metrics = Metrics(CollectorRegistry())
    release = [asyncio.Event(), asyncio.Event()]

    async def held(i: int) -> None:
        metrics.paused("pause.budget")
        await release[i].wait()
        metrics.resumed()

    def paused() -> float | None:
        return metrics.registry.get_sample_value("actionflows_paused", {"cause": "budget"})

    tasks = [asyncio.create_task(held(i)) for i in range(2)]
    await asyncio.sleep(0)
    release[0].set()
    await tasks[0]
    assert paused() == 1
    release[1].set()
    await tasks[1]
    assert paused() == 0


def test_reasons_become_bounded_labels() -> None:
    """Codes pass; sentences give their error class; past the bound, 'other'. A pause is
    labelled by its code without the prefix."""
    assert label("decode.malformed_json") == "decode.malformed_json"
    assert label("ValidationError: permanent error") == "ValidationError"
    assert label("a free sentence with spaces") == "other"
    assert pause_cause("pause.login_refused") == "login_refused"
    assert pause_cause("pause.budget") == "budget"
    metrics = Metrics(CollectorRegistry())
    record = inbound(b"{}")
    for i in range(MAX_LABEL_VALUES + 5):
        metrics.dead_letter(record, f"code_{i}")
    assert (
        metrics.registry.get_sample_value("actionflows_dead_letters_total", {"reason": "other"})
        == 5
    )


def test_salesforce_calls_by_resource_and_status() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.salesforce_call(CallInfo("POST", "sobjects/Lead", 201, 0.0, 0.1))
    metrics.salesforce_call(CallInfo("GET", "query", None, 0.0, 5.0))
    metrics.salesforce_call(CallInfo("GET", "query", 200, 0.0, 0.1))
    value = metrics.registry.get_sample_value
    assert (
        value(
            "actionflows_salesforce_calls_total",
            {"resource": "sobjects/Lead", "method": "POST", "status": "201"},
        )
        == 1
    )
    assert (
        value(
            "actionflows_salesforce_calls_total",
            {"resource": "query", "method": "GET", "status": "none"},
        )
        == 1
    )
    assert value("actionflows_salesforce_call_duration_seconds_count", {"resource": "query"}) == 2


async def test_an_in_process_retry_is_counted_and_traced_as_a_second_attempt(
    tmp_path: Path,
) -> None:
    """A transient failure of the find: the step runs twice, the second time as a retry."""
    o = observed_engine(tmp_path)
    o.gateway.failures["query"] = FakeUnavailable("busy", error_code="SERVER_UNAVAILABLE")
    await o.handle([inbound(ticket_created("e1", "T1", "a@example.com"))])
    find = {"action": "salesforce.find_record", "object": "lead"}
    assert o.sample("actionflows_salesforce_retries_total", **find) == 1
    create = {"action": "salesforce.create_record", "object": "lead"}
    assert o.sample("actionflows_salesforce_retries_total", **create) == 0
    attempts = [
        s.attributes["actionflows.step.attempt"] for s in o.finished() if s.name == "step find_lead"
    ]
    assert attempts == [1, 2]


def test_budget_and_consumer_figures_are_read_at_scrape_time() -> None:
    """Gauges follow the governor and the consumer without anyone copying figures into them."""
    metrics = Metrics(CollectorRegistry())
    governor = BudgetGovernor()
    offsets: dict[tuple[str, int], tuple[int | None, int | None]] = {}
    metrics.collect_from(budget_collector(governor))
    metrics.collect_from(consumer_collector(lambda: offsets))
    value = metrics.registry.get_sample_value
    assert value("actionflows_salesforce_api_remaining") is None  # no figure seen yet
    governor.observe(ApiUsage(api=Usage(used=950, limit=1000)))
    assert value("actionflows_salesforce_api_remaining") == 50
    assert value("actionflows_salesforce_budget_paused") == 1  # the 10% reserve is reached
    offsets[("t", 0)] = (120, 100)
    offsets[("t", 1)] = (7, None)
    assert value("actionflows_partitions_assigned") == 2
    assert value("actionflows_consumer_lag", {"topic": "t", "partition": "0"}) == 20
    assert value("actionflows_consumer_lag", {"topic": "t", "partition": "1"}) == 7


async def test_a_pause_resumed_from_another_task_ends() -> None:
    """One worker-wide pause, resumed by a task that did not start it: the gauge drops."""
    metrics = Metrics(CollectorRegistry())
    metrics.paused("pause.login_refused")
    await asyncio.get_running_loop().run_in_executor(None, metrics.resumed)  # a bare context
    value = metrics.registry.get_sample_value("actionflows_paused", {"cause": "login_refused"})
    assert value == 0
