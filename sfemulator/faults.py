"""Fault injection: rules that match requests and make them slow, fail, or vanish — seeded.

A ``FaultRule`` matches on method, path (``path`` is a glob, ``path_regex`` a regular expression
searched in the path) and sObject; it fires with ``probability`` (drawn from the emulator's seeded
RNG) and at most ``times`` times. Latency rules add up and let evaluation continue; the first other
rule that fires decides the request's fate.

:class:`FaultPlan` also keeps what tests and chaos runs read back (``GET /__emulator/fault-counts``):
how often each rule fired, and how many answers are being withheld right now. A
``fail_after_commit`` rule with ``latency_ms`` holds the committed request's answer that long (or
until ``POST /__emulator/release``) before dropping it: a window in which a test can crash its
client on purpose, between Salesforce's commit and the client hearing of it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

ACTIONS = (
    "latency",
    "http_error",
    "unable_to_lock_row",
    "connection_reset",
    "hang",
    "fail_after_commit",
    "request_limit_exceeded",
)


@dataclass(frozen=True)
class FaultRule:
    """One injected fault. Empty matchers match everything."""

    action: str
    method: str | None = None
    path: str | None = None
    path_regex: str | None = None
    sobject: str | None = None
    probability: float = 1.0
    times: int | None = None
    latency_ms: float = 0.0  # latency: added before; fail_after_commit: answer held this long
    status: int = 503
    error_code: str = "SERVER_UNAVAILABLE"
    message: str = "Server too busy"
    html: bool = False  # http_error: an HTML page (as a CDN or load balancer sends) not JSON
    records: int | None = None  # unable_to_lock_row on Collections: fail this many records

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; expected one of {ACTIONS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.path_regex is not None:
            re.compile(self.path_regex)

    def matches(self, method: str, path: str, sobject: str | None) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path and not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.path_regex and not re.search(self.path_regex, path):
            return False
        return not (self.sobject and (sobject or "").lower() != self.sobject.lower())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FaultRule keys: {sorted(unknown)}")
        return cls(**data)

    # Shorthands for the common cases.
    @classmethod
    def latency(cls, ms: float, **match: Any) -> FaultRule:
        return cls("latency", latency_ms=ms, **match)

    @classmethod
    def server_unavailable(cls, *, html: bool = False, **match: Any) -> FaultRule:
        return cls(
            "http_error",
            status=503,
            error_code="SERVER_UNAVAILABLE",
            message="Server too busy",
            html=html,
            **match,
        )


@dataclass(frozen=True)
class FaultDecision:
    latency_ms: float = 0.0
    rule: FaultRule | None = None  # the non-latency rule that fired, if any


class FaultPlan:
    """The active rules, how often each has fired, and the seeded RNG deciding probabilities."""

    def __init__(self, rules: tuple[FaultRule, ...], seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - fault mixes are seeded for reproducibility
        self.replace(rules)
        self.withheld = 0  # committed requests whose answer is being held now
        self._released = asyncio.Event()

    def replace(self, rules: tuple[FaultRule, ...] | list[FaultRule]) -> None:
        self.rules = tuple(rules)
        self.fired = [0] * len(self.rules)

    async def hold(self, seconds: float, stopping: asyncio.Event) -> None:
        """Withhold an answer for ``seconds``, or until :meth:`release` or the emulator stops."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self._released, stopping)]
        self.withheld += 1
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.withheld -= 1
            for waiting in waits:
                waiting.cancel()

    def release(self) -> int:
        """End every hold now (the answers are then lost); return how many there were."""
        held = self.withheld
        self._released.set()
        self._released = asyncio.Event()
        return held

    def sample(self, population: int, count: int) -> frozenset[int]:
        """``count`` distinct indexes below ``population``, drawn from the seeded RNG."""
        return frozenset(self._rng.sample(range(population), min(count, population)))

    def decide(self, method: str, path: str, sobject: str | None) -> FaultDecision:
        latency = 0.0
        for index, rule in enumerate(self.rules):
            if not rule.matches(method, path, sobject):
                continue
            if rule.times is not None and self.fired[index] >= rule.times:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self.fired[index] += 1
            if rule.action == "latency":
                latency += rule.latency_ms
                continue
            return FaultDecision(latency, rule)
        return FaultDecision(latency, None)


_SOBJECT_IN_PATH = re.compile(r"/(?:sobjects|composite/sobjects)/([A-Za-z0-9_]+)")
_FROM = re.compile(r"\bfrom\s+([A-Za-z0-9_]+)", re.IGNORECASE)


def sobject_of(path: str, soql: str | None = None, body: bytes | None = None) -> str | None:
    """The sObject a request is about: from its path, its query's FROM clause, or (for an
    sObject Collections create or update) the type of the first record in its body."""
    match = _SOBJECT_IN_PATH.search(path)
    if match and match.group(1) not in {"describe"}:
        return match.group(1)
    if path.startswith("/services/Soap/"):
        return "Lead"
    if soql:
        found = _FROM.search(soql)
        return found.group(1) if found else None
    if body and path.rstrip("/").endswith("/composite/sobjects"):
        return _first_record_type(body)
    return None


def _first_record_type(body: bytes) -> str | None:
    try:
        records = orjson.loads(body).get("records")
        kind = records[0]["attributes"]["type"]
    except (orjson.JSONDecodeError, AttributeError, LookupError, TypeError):
        return None  # the handler answers the malformed body; no rule matches it by sObject
    return kind if isinstance(kind, str) else None


SERVICE_UNAVAILABLE_HTML = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1><p>The server is temporarily unable to service your request "
    "due to maintenance downtime or capacity problems. Please try again later.</p></body></html>"
)
