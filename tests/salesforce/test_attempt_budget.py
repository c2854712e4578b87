"""One attempt budget per step: the step's policy counts every HTTP call the step makes.

A flow step runs through the runner, the real client and the emulator over localhost HTTP, with
503s injected on every write. Before, the transport retried up to 4 times inside each of up to 5
engine attempts: 20 calls for one step. Now a step makes ``max_attempts_in_process`` calls per
delivery and ``max_attempts`` in all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.events import Event, Person
from pipeline.ledger import InMemoryLedger
from pipeline.loader import load_flows
from pipeline.plan import Plan
from pipeline.ports import GatewayError
from pipeline.result import RunStatus
from pipeline.runner import Ports, run
from salesforce.client import SalesforceClient
from sfemulator import Emulator, FaultRule
from tests.pipeline.flow_fakes import FakeClock, FixedRandom

FLOW = """\
name: upsert-lead
version: 1
trigger: {event_types: [ticket.created]}
steps:
  - id: create_lead
    action: salesforce.create_record
    object: lead
    inputs: {name: "{{ event.requester.name }}", description: "Ticket {{ event.ticket_id }}"}
    policy: {max_attempts: 5, max_attempts_in_process: 3}
"""
EVENT = Event(id="e1", type="ticket.created", ticket_id="7", requester=Person(name="Nora Quist"))
WRITES = "fault http_error"


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    (tmp_path / "flow.yaml").write_text(FLOW)
    flows = load_flows(tmp_path, external_id_fields={"lead": "Actionflows_Key__c"})
    found = flows.get("upsert-lead")
    assert found is not None
    return found


@pytest.fixture
def client(emu_client: SalesforceClient) -> SalesforceClient:
    return emu_client


def ports(gateway: Any) -> Ports:
    return Ports(gateway=gateway, ledger=InMemoryLedger(), clock=FakeClock(), rng=FixedRandom())


def writes(emu: Emulator) -> int:
    return emu.call_counts().get(WRITES, 0)


async def test_a_failing_step_makes_exactly_max_attempts_calls(
    emu: Emulator, client: SalesforceClient, plan: Plan
) -> None:
    """Every write answers 503: 3 calls in the first delivery (then retry later), 2 in the
    second (then dead letter): 5 HTTP calls in all, the step's max_attempts."""
    emu.set_faults([FaultRule.server_unavailable(method="PATCH")])
    first = await run(plan, EVENT, ports(client))
    assert first.status is RunStatus.RETRY_LATER
    assert (writes(emu), client.api_calls) == (3, 3)
    second = await run(plan, EVENT, ports(client), prior_attempts={"create_lead": 3})
    assert second.status is RunStatus.DEAD_LETTER
    assert second.reason_code == "step.retries_exhausted"
    assert (writes(emu), client.api_calls) == (5, 5)
    assert emu.records("Lead") == []


async def test_a_step_that_recovers_stops_calling(
    emu: Emulator, client: SalesforceClient, plan: Plan
) -> None:
    """Two 503s, then success: three calls, one lead."""
    emu.set_faults([FaultRule.server_unavailable(method="PATCH", times=2)])
    result = await run(plan, EVENT, ports(client))
    assert result.status is RunStatus.SUCCEEDED
    assert writes(emu) == 2
    assert client.api_calls == 3
    assert len(emu.records("Lead")) == 1


class RetryingGateway:
    """Negative control: a gateway that retries each call itself, as the transport used to."""

    def __init__(self, inner: SalesforceClient, attempts: int = 4) -> None:
        self.inner = inner
        self.attempts = attempts

    async def upsert(self, sobject: str, field: str, value: str, fields: Mapping[str, Any]) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.inner.upsert(sobject, field, value, fields)
            except GatewayError as error:
                if not error.retriable or attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")


async def test_retries_below_the_runner_multiply_the_calls(
    emu: Emulator, client: SalesforceClient, plan: Plan
) -> None:
    """Negative control: with a retry loop under the runner again, the same delivery costs
    3 x 4 = 12 calls, which the count above would catch."""
    emu.set_faults([FaultRule.server_unavailable(method="PATCH")])
    result = await run(plan, EVENT, ports(RetryingGateway(client)))
    assert result.status is RunStatus.RETRY_LATER
    assert writes(emu) == 12
