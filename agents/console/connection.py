"""The connection indicator of the console: :func:`salesforce.indicator.build_indicator`, the
same as ``actionflows connect`` shows, kept for a minute.

Building it costs the org a handful of API calls (token, identity, ``Organization``, versions,
global describe), so the page reuses the last one for :data:`MAX_AGE_S` unless asked to check
again, and concurrent requests share one check. The console logs in with its own client of the
configured connection; the workers' tokens are theirs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from salesforce.client import SalesforceClient
from salesforce.connect_cli import catalogue_requirements
from salesforce.indicator import ConnectionIndicator, build_indicator
from salesforce.settings import ConnectionSettings

MAX_AGE_S = 60.0


@dataclass(frozen=True, slots=True)
class Checked:
    indicator: ConnectionIndicator
    at: datetime
    monotonic: float


class Indicator:
    """The indicator of one connection, or why there is none (``problem``)."""

    def __init__(
        self,
        connection: ConnectionSettings | None,
        problem: str = "no Salesforce connection is configured (see docs/salesforce.md)",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.problem = problem
        self._clock = clock
        self._client: SalesforceClient | None = None
        self._last: Checked | None = None
        self._lock = asyncio.Lock()

    async def get(self, *, refresh: bool = False) -> Checked | None:
        """The last check when it is fresh, else a new one; None without a connection."""
        if self.connection is None:
            return None
        async with self._lock:
            last = self._last
            if last is None or refresh or self._clock() - last.monotonic > MAX_AGE_S:
                if self._client is None:
                    self._client = SalesforceClient(self.connection)
                indicator = await build_indicator(
                    self._client, requirements=catalogue_requirements()
                )
                self._last = Checked(indicator, datetime.now(UTC), self._clock())
            return self._last

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
