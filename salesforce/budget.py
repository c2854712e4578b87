"""The org-wide API budget governor: pause before the daily limit, instead of failing at it.

Every counted Salesforce response carries ``Sforce-Limit-Info: api-usage=used/limit`` for the
whole org, so each worker sees what all workers (and every other integration) have spent. The
:class:`BudgetGovernor` keeps the latest figure; once the remaining calls fall to the reserve
(a share of the daily limit kept for people and other integrations), or Salesforce answers
``REQUEST_LIMIT_EXCEEDED``, it refuses further calls with :class:`ApiBudgetPaused` — a
``throttle`` error, which the engine answers by pausing consumption, not by retrying or
dead-lettering. After ``probe_interval_s`` it lets calls through again: the first response
refreshes the figure (the limit is a rolling 24-hour window) and either keeps the flow going or
pauses again. So a paused worker spends at most one call per interval.

The concurrency limit (too many long-running requests) is separate: the engine pauses the run that
hit it (a ``throttle``), and it never pauses the budget.

:class:`BudgetedGateway` applies the governor in front of any gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.ports import (
    AppendWrite,
    ConversionResult,
    FindQuery,
    FlowGateway,
    GatewayError,
    LeadConversion,
    UpsertResult,
)
from salesforce.errors import DailyLimitError, SalesforceError
from salesforce.limits import ApiUsage

log = logging.getLogger(__name__)


class ApiBudgetPaused(SalesforceError):
    """The org's daily API budget is (nearly) spent; calls are paused, not failed."""

    retriable = True
    throttle = True
    pause_cause: ClassVar[str] = "the API budget's reserve is reached"
    pause_code: ClassVar[str] = "budget"


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    reserve_fraction: float = 0.10  # keep 10% of the daily limit for everyone else
    probe_interval_s: float = 300.0  # while paused, let one call through this often


class BudgetGovernor:
    """Tracks the org's API usage and decides whether a call may go out."""

    def __init__(
        self, policy: BudgetPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or BudgetPolicy()
        self._clock = clock
        self.usage: ApiUsage | None = None
        self._paused_until: float | None = None
        self.in_flight = 0  # calls sent whose response (and usage figure) has not come back

    @property
    def paused(self) -> bool:
        return self._paused_until is not None and self._clock() < self._paused_until

    def observe(self, usage: ApiUsage) -> None:
        """Called with every ``Sforce-Limit-Info`` the client sees."""
        self.usage = usage
        api = usage.api
        if api is None:
            return
        reserve = int(api.limit * self.policy.reserve_fraction)
        if api.remaining <= reserve:
            if not self.paused:
                log.warning(
                    "API budget: %d of %d calls used, reserve %d reached; pausing for %.1fs",
                    api.used,
                    api.limit,
                    reserve,
                    self.policy.probe_interval_s,
                )
            self._paused_until = self._clock() + self.policy.probe_interval_s
        elif self._paused_until is not None:
            log.info("API budget: %d of %d used; resuming", api.used, api.limit)
            self._paused_until = None

    def limit_exceeded(self) -> None:
        """Salesforce refused a call with REQUEST_LIMIT_EXCEEDED."""
        self._paused_until = self._clock() + self.policy.probe_interval_s

    def check(self) -> None:
        """Raise :class:`ApiBudgetPaused` while paused; otherwise return.

        Calls already in flight count as spent: without that, many concurrent runs would all
        pass the check on the same stale figure and overshoot the reserve together.
        """
        api = self.usage.api if self.usage else None
        reserve = int(api.limit * self.policy.reserve_fraction) if api else 0
        if self._paused_until is None and api and api.remaining - self.in_flight <= reserve:
            self._paused_until = self._clock() + self.policy.probe_interval_s
        if self._paused_until is None:
            return
        now = self._clock()
        remaining = self._paused_until - now
        if remaining > 0:
            usage = (
                f" ({self.usage.api.used}/{self.usage.api.limit} used)"
                if (self.usage and self.usage.api)
                else ""
            )
            raise ApiBudgetPaused(
                f"API budget paused{usage}; next probe in {remaining:.0f}s",
                error_code="API_BUDGET_PAUSED",
                retry_after=remaining,
            )
        # The probe interval is over: this call is the probe. Everyone else waits one more
        # interval; the probe's answer (observe) resumes them all, or keeps the pause. Letting
        # every waiting run through at once would spend the reserve in one burst.
        self._paused_until = now + self.policy.probe_interval_s


class BudgetedGateway:
    """A gateway that asks the governor before every call (a :class:`FlowGateway`)."""

    def __init__(self, inner: FlowGateway, governor: BudgetGovernor) -> None:
        self.inner = inner
        self.governor = governor

    async def _call(self, method: str, *args: Any) -> Any:
        self.governor.check()
        self.governor.in_flight += 1
        try:
            return await getattr(self.inner, method)(*args)
        except GatewayError as error:
            if isinstance(error, DailyLimitError):
                self.governor.limit_exceeded()
            raise
        finally:
            self.governor.in_flight -= 1

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        return await self._call("create", sobject, fields)  # type: ignore[no-any-return]

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        return await self._call(  # type: ignore[no-any-return]
            "upsert", sobject, external_id_field, external_id, fields
        )

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        await self._call("update", sobject, record_id, fields)

    async def delete(self, sobject: str, record_id: str) -> None:
        await self._call("delete", sobject, record_id)

    async def get(self, sobject: str, record_id: str, fields: Sequence[str]) -> dict[str, Any]:
        return await self._call("get", sobject, record_id, fields)  # type: ignore[no-any-return]

    async def query(self, soql: str) -> list[dict[str, Any]]:
        return await self._call("query", soql)  # type: ignore[no-any-return]

    async def find(self, query: FindQuery) -> list[dict[str, Any]]:
        return await self._call("find", query)  # type: ignore[no-any-return]

    async def convert_lead(self, conversion: LeadConversion) -> ConversionResult:
        return await self._call("convert_lead", conversion)  # type: ignore[no-any-return]

    async def append(self, write: AppendWrite) -> None:
        await self._call("append", write)

    async def find_or_create(
        self, sobject: str, key_field: str, key: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        return await self._call(  # type: ignore[no-any-return]
            "find_or_create", sobject, key_field, key, fields
        )
