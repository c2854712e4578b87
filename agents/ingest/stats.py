"""The ingest's counters and its rate-limited log lines, in process (``GET /healthz`` shows them).

Counter names: ``accepted`` (events produced and acknowledged), ``refused.<status>.<code>``
(requests answered 4xx/5xx), ``enrichment.enriched``, ``enrichment.ids_only`` and
``enrichment.ids_only.<reason>``.
"""

from __future__ import annotations

import time
from collections import Counter


class Stats:
    def __init__(self, *, log_every_s: float = 10.0) -> None:
        self.counts: Counter[str] = Counter()
        self.log_every_s = log_every_s
        self._logged: dict[str, float] = {}

    def count(self, name: str, n: int = 1) -> int:
        self.counts[name] += n
        return self.counts[name]

    def due(self, key: str) -> bool:
        """Whether a line about ``key`` may be logged now: at most one every ``log_every_s``,
        so a flood of refused requests or a Zendesk outage leaves a few lines and the counts."""
        now = time.monotonic()
        if now - self._logged.get(key, -self.log_every_s) < self.log_every_s:
            return False
        self._logged[key] = now
        return True

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
