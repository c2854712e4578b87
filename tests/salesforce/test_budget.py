"""The API budget governor: pause before the daily limit, probe, resume."""

from __future__ import annotations

import pytest

from pipeline.ports import SalesforceGateway
from salesforce.budget import ApiBudgetPaused, BudgetedGateway, BudgetGovernor, BudgetPolicy
from salesforce.errors import DailyLimitError
from salesforce.limits import ApiUsage, Usage
from tests.pipeline.catalogue_fakes import FakeSalesforce


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def usage(used: int, limit: int = 1000) -> ApiUsage:
    return ApiUsage(api=Usage(used=used, limit=limit))


def test_calls_flow_while_the_budget_is_above_the_reserve() -> None:
    """Below the reserve threshold nothing is paused."""
    governor = BudgetGovernor(BudgetPolicy(reserve_fraction=0.1), clock=Clock())
    governor.observe(usage(899))
    governor.check()
    assert not governor.paused


def test_reaching_the_reserve_pauses_until_the_probe_interval_passes() -> None:
    """At the reserve, calls are refused with a throttle error and a retry_after hint."""
    clock = Clock()
    governor = BudgetGovernor(BudgetPolicy(reserve_fraction=0.1, probe_interval_s=60), clock=clock)
    governor.observe(usage(900))
    with pytest.raises(ApiBudgetPaused) as refused:
        governor.check()
    assert refused.value.throttle
    assert refused.value.retry_after == pytest.approx(60)
    clock.t += 61
    governor.check()  # the probe may go out


def test_one_probe_per_interval_not_a_burst() -> None:
    """When the interval ends, one call goes out as the probe; every other call waits for its
    answer (or the next interval) — runs that all waited for the same pause must not resume
    together and spend the reserve in one burst."""
    clock = Clock()
    governor = BudgetGovernor(BudgetPolicy(reserve_fraction=0.1, probe_interval_s=60), clock=clock)
    governor.observe(usage(900))
    clock.t += 61
    governor.check()  # the probe
    for _ in range(5):
        with pytest.raises(ApiBudgetPaused):
            governor.check()
    governor.observe(usage(900))  # the probe's answer: still at the reserve
    clock.t += 61
    governor.check()  # the next interval's probe
    governor.observe(usage(500))  # the day rolled over: everyone resumes
    for _ in range(5):
        governor.check()


def test_a_fresh_figure_below_the_reserve_resumes_at_once() -> None:
    """The window rolled over: the next usage figure ends the pause."""
    governor = BudgetGovernor(BudgetPolicy(reserve_fraction=0.1), clock=Clock())
    governor.observe(usage(950))
    governor.observe(usage(10))
    governor.check()
    assert not governor.paused


async def test_request_limit_exceeded_pauses_the_gateway() -> None:
    """A REQUEST_LIMIT_EXCEEDED answer pauses further calls without another request."""
    fake = FakeSalesforce()
    fake.failures["create"] = DailyLimitError(
        "TotalRequests Limit exceeded.", error_code="REQUEST_LIMIT_EXCEEDED"
    )
    governor = BudgetGovernor(BudgetPolicy(probe_interval_s=30), clock=Clock())
    gateway: SalesforceGateway = BudgetedGateway(fake, governor)
    with pytest.raises(DailyLimitError):
        await gateway.create("Lead", {"LastName": "A", "Company": "B"})
    with pytest.raises(ApiBudgetPaused):
        await gateway.create("Lead", {"LastName": "A", "Company": "B"})
    assert fake.methods() == ["create"]
