"""The org's API budget: a rolling 24-hour request counter and long-running request concurrency.

Time comes from the emulator's clock so tests can move it instead of waiting. Counting follows
reference §7: every data or SOAP API request counts once (Composite and Collections once in all),
``GET /services/data/``, OAuth and the emulator's admin routes count nothing.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

DAY_S = 24 * 3600.0
DAILY_LIMIT_MESSAGE = "TotalRequests Limit exceeded."
CONCURRENT_LIMIT_MESSAGE = "ConcurrentRequests (Concurrent API Requests) Limit exceeded"


class ApiBudget:
    """Counts API requests per minute over a rolling day and tracks requests in flight."""

    def __init__(
        self,
        daily_limit: int,
        concurrency_limit: int,
        long_running_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.daily_limit = daily_limit
        self.concurrency_limit = concurrency_limit
        self.long_running_s = long_running_s
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [minute start, count]
        self._used = 0
        self._ids = itertools.count()
        self.in_flight: dict[int, float] = {}

    def used(self) -> int:
        """Requests counted within the last 24 hours."""
        horizon = self._clock() - DAY_S
        while self._buckets and self._buckets[0][0] + 60.0 <= horizon:
            self._used -= int(self._buckets.popleft()[1])
        return self._used

    def exhausted(self) -> bool:
        return self.used() >= self.daily_limit

    def count(self, calls: int = 1) -> None:
        minute = self._clock() // 60.0 * 60.0
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += calls
        else:
            self._buckets.append([minute, float(calls)])
        self._used += calls

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value: ``api-usage=used/limit``."""
        return f"api-usage={self.used()}/{self.daily_limit}"

    def begin(self) -> int:
        ticket = next(self._ids)
        self.in_flight[ticket] = self._clock()
        return ticket

    def end(self, ticket: int) -> None:
        self.in_flight.pop(ticket, None)

    def long_running(self) -> int:
        """Requests in flight for at least the long-running threshold (20 s on real orgs)."""
        now = self._clock()
        return sum(1 for start in self.in_flight.values() if now - start >= self.long_running_s)

    def concurrency_exceeded(self) -> bool:
        return self.long_running() >= self.concurrency_limit

    def reset(self) -> None:
        self._buckets.clear()
        self._used = 0
