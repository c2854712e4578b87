"""Reading the org's API consumption from the ``Sforce-Limit-Info`` response header.

Salesforce sends ``api-usage=USED/LIMIT`` on every REST response except ``/services/data/``;
newer orgs add ``api-bursts=USED/LIMIT`` and the old per-app pilot sent
``per-app-api-usage=USED/LIMIT(appName=NAME)``. Both numbers are *used* and *limit*, never
*remaining* (a bug some clients have). There is no ``Retry-After`` and no ``X-RateLimit-*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Counts of at most 18 digits: int() of anything longer is refused by Python (and meaningless).
_ENTRY = re.compile(
    r"([A-Za-z][\w-]{0,63})\s*=\s*([0-9]{1,18})\s*/\s*([0-9]{1,18})"
    r"(?:\s*\(\s*appName\s*=\s*([^)]{0,200})\))?"
)


@dataclass(frozen=True, slots=True)
class Usage:
    """``used`` calls out of ``limit`` for one counter."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def fraction(self) -> float:
        """Share of the limit consumed, 0.0 … 1.0 and beyond (orgs may overrun a little)."""
        return self.used / self.limit if self.limit else 1.0


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The latest counters seen in a response. ``observed_at`` is the client's clock, seconds."""

    api: Usage | None = None
    bursts: Usage | None = None
    per_app: Mapping[str, Usage] = field(default_factory=lambda: MappingProxyType({}))
    observed_at: float | None = None

    def __str__(self) -> str:
        if self.api is None:
            return "unknown"
        return f"{self.api.used}/{self.api.limit} ({self.api.fraction:.1%})"


def parse_limit_info(header: str | None, *, observed_at: float | None = None) -> ApiUsage | None:
    """Parse one ``Sforce-Limit-Info`` value; ``None`` when it carries no counter we know."""
    if not header:
        return None
    api: Usage | None = None
    bursts: Usage | None = None
    per_app: dict[str, Usage] = {}
    for match in _ENTRY.finditer(header):
        name, used, limit, app = match.groups()
        usage = Usage(int(used), int(limit))
        if name == "api-usage":
            api = usage
        elif name == "api-bursts":
            bursts = usage
        elif name == "per-app-api-usage":
            per_app[(app or "").strip()] = usage
    if api is None and bursts is None and not per_app:
        return None
    return ApiUsage(api, bursts, MappingProxyType(per_app), observed_at)
