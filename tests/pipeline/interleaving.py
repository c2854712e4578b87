"""A scheduler that decides the order of every Salesforce call, and an org that obeys it.

:class:`Scheduler` runs many flow runs at once; each call a run makes to the
:class:`InterleavedOrg` (and each wait a gateway makes) stops at a gate until the scheduler picks
it, so a test or hypothesis chooses the interleaving, call by call, and the same choices always
give the same run. Each call is atomic, as a row write is in Salesforce. The org keeps time on a
clock the scheduler moves, stamps records to the second as Salesforce does, dates its answers
(the ``Date`` header), refuses a stale ``If-Unmodified-Since`` with 412, a repeated unique
external id with DUPLICATE_VALUE and a second lead or contact with one email with
DUPLICATES_DETECTED (its duplicate rule).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from pipeline.ports import UpsertResult
from salesforce.client import VersionedRecord
from salesforce.errors import PreconditionFailedError
from tests.pipeline.catalogue_fakes import FakeRejected, FakeSalesforce

SETTLE_TURNS = 40  # loop turns for every runnable task to reach its next gate
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Scheduler:
    """Releases one waiting call at a time: ``pick(n)`` chooses which of the ``n`` waiting,
    ``advance()`` how many seconds pass before it runs."""

    def __init__(self, pick: Callable[[int], int], advance: Callable[[], float]) -> None:
        self.pick = pick
        self.advance = advance
        self.clock = START
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self.order: list[str] = []  # the calls as released, for failure messages

    async def turn(self, what: str) -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((what, gate))
        await gate

    async def sleep(self, seconds: float) -> None:
        """A gateway's wait: a call like any other, after which the clock shows the wake time."""
        wake = self.clock + seconds
        await self.turn(f"sleep {seconds:.3f}")
        self.clock = max(self.clock, wake)

    def monotonic(self) -> float:
        return self.clock

    async def run(self, runs: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
        tasks = [asyncio.ensure_future(run) for run in runs]
        while True:
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            if not self._waiting:
                raise AssertionError(f"no run can go on: deadlock after {self.order}")
            what, gate = self._waiting.pop(self.pick(len(self._waiting)))
            self.clock += self.advance()
            self.order.append(what)
            gate.set_result(None)


DUPLICATE_RULES = {"Lead": "Email", "Contact": "Email"}


class InterleavedOrg(FakeSalesforce):
    """The fake org, one call at a time in the scheduler's order (see the module docstring)."""

    def __init__(
        self, scheduler: Scheduler, *, check_precondition: bool = True, date_ahead_s: float = 0
    ) -> None:
        super().__init__()
        self.scheduler = scheduler
        # Controls: False ignores If-Unmodified-Since, as if the client did not send it; a
        # Date running ahead of the record clock hides that a record changed this second.
        self.check_precondition = check_precondition
        self.date_ahead_s = date_ahead_s
        self.refused = 0  # conditional updates refused with 412

    def now(self, ahead_s: float = 0) -> dt.datetime:
        return dt.datetime.fromtimestamp(math.floor(self.scheduler.clock + ahead_s), dt.UTC)

    def _stamp(self) -> str:
        self._sequence += 1
        return self.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def _check_create(self, sobject: str, fields: Mapping[str, Any]) -> None:
        rule = DUPLICATE_RULES.get(sobject)
        wanted = str(fields.get(rule) or "").casefold() if rule else ""
        for record in self.records.get(sobject, {}).values() if wanted else ():
            if str(record.get(rule) or "").casefold() == wanted:  # type: ignore[arg-type]
                raise FakeRejected("Use one of these records?", error_code="DUPLICATES_DETECTED")
        super()._check_create(sobject, fields)

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        await self.scheduler.turn(f"create {sobject}")
        return await super().create(sobject, fields)

    async def upsert(
        self, sobject: str, external_id_field: str, external_id: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        await self.scheduler.turn(f"upsert {sobject}")
        return await super().upsert(sobject, external_id_field, external_id, fields)

    async def query(self, soql: str) -> list[dict[str, Any]]:
        await self.scheduler.turn(f"query {soql[:40]}")
        return await super().query(soql)

    async def read_for_update(
        self, sobject: str, record_id: str, fields: Sequence[str]
    ) -> VersionedRecord:
        await self.scheduler.turn(f"read {record_id}")
        read = await super().read_for_update(sobject, record_id, fields)
        return VersionedRecord(read.values, read.last_modified, self.now(self.date_ahead_s))

    async def update(
        self,
        sobject: str,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        if_unmodified_since: Any = None,
    ) -> None:
        await self.scheduler.turn(f"update {record_id}")
        since = if_unmodified_since if self.check_precondition else None
        try:
            await super().update(sobject, record_id, fields, if_unmodified_since=since)
        except PreconditionFailedError:
            self.refused += 1
            raise
