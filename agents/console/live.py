"""The live page's figures, scraped from each worker's ``/metrics`` every few seconds.

A worker already counts what the page shows (:mod:`agents.observe.metrics`): records taken
(``actionflows_records_in_total``), lag per partition (``actionflows_consumer_lag``), records in
flight (``actionflows_in_flight_events``), pauses (``actionflows_paused{cause}``,
``actionflows_salesforce_budget_paused``), partitions assigned and the org's API usage. The
console reads them as Prometheus does, with the same bearer token, and keeps the last minute of
scrapes to turn the records counter into events per second. The worker does nothing more for
it; the history indexer could not tell lag, in-flight work or pauses, which only a worker knows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from topics.redaction import scrub

WINDOW_S = 60.0  # events per second are averaged over the scrapes of the last minute


@dataclass(frozen=True, slots=True)
class Scrape:
    """One worker's figures at one moment."""

    at: float  # the clock's reading (monotonic): for rates
    wall: datetime  # for the page
    records_in: float = 0.0
    runs: float = 0.0
    dead_letters: float = 0.0
    in_flight: float = 0.0
    partitions: float = 0.0
    lag: dict[tuple[str, str], float] = field(default_factory=dict)  # (topic, partition)
    paused: tuple[str, ...] = ()  # the causes runs are held for now
    api_used: float | None = None
    api_limit: float | None = None

    @property
    def total_lag(self) -> float:
        return sum(self.lag.values())


def parse(text: str, at: float, wall: datetime) -> Scrape:
    """A worker's ``/metrics`` page as a :class:`Scrape`."""
    sums = {"records_in": 0.0, "runs": 0.0, "dead_letters": 0.0}
    totals = {
        "actionflows_records_in_total": "records_in",
        "actionflows_runs_total": "runs",
        "actionflows_dead_letters_total": "dead_letters",
    }
    lag: dict[tuple[str, str], float] = {}
    paused: list[str] = []
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                sums[totals[sample.name]] += sample.value
            elif sample.name == "actionflows_consumer_lag":
                lag[(sample.labels.get("topic", "?"), sample.labels.get("partition", "?"))] = (
                    sample.value
                )
            elif sample.name == "actionflows_paused" and sample.value >= 1:
                paused.append(sample.labels.get("cause", "?"))
            elif sample.name == "actionflows_salesforce_budget_paused" and sample.value >= 1:
                paused.append("budget")
            else:
                values[sample.name] = sample.value
    return Scrape(
        at=at,
        wall=wall,
        **sums,
        in_flight=values.get("actionflows_in_flight_events", 0.0),
        partitions=values.get("actionflows_partitions_assigned", 0.0),
        lag=lag,
        paused=tuple(sorted(set(paused))),
        api_used=values.get("actionflows_salesforce_api_used"),
        api_limit=values.get("actionflows_salesforce_api_limit"),
    )


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What the live page shows of one worker."""

    url: str
    latest: Scrape | None
    error: str | None  # why the last scrape failed; None when it worked
    events_per_s: float | None  # None until two scrapes are in the window
    window_s: float | None


class Sampler:
    """Scrapes ``urls`` every ``every_s`` seconds and keeps the last :data:`WINDOW_S` of it."""

    def __init__(
        self,
        urls: Iterable[str],
        token: SecretStr | None,
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = tuple(urls)
        self.every_s = every_s
        self._token = token
        self._clock = clock
        self._scrapes: dict[str, deque[Scrape]] = {url: deque() for url in self.urls}
        self._errors: dict[str, str | None] = dict.fromkeys(self.urls)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Scrape for ever (until cancelled)."""
        while True:
            await self.scrape_all(session)
            await asyncio.sleep(self.every_s)  # the sampling period, not a synchronisation

    async def scrape_all(self, session: aiohttp.ClientSession) -> None:
        await asyncio.gather(*(self._scrape(session, url) for url in self.urls))

    async def _scrape(self, session: aiohttp.ClientSession, url: str) -> None:
        headers = {}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        try:
            async with session.get(f"{url}/metrics", headers=headers) as response:
                if response.status != 200:
                    why = (await response.text())[:200]
                    raise ValueError(f"HTTP {response.status}: {why}")
                text = await response.text()
            scrape = parse(text, self._clock(), datetime.now(UTC))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self._errors[url] = scrub(f"{type(error).__name__}: {error}")
            return
        self._errors[url] = None
        kept = self._scrapes[url]
        kept.append(scrape)
        while kept and kept[0].at < scrape.at - WINDOW_S:
            kept.popleft()

    def view(self) -> list[WorkerView]:
        views = []
        for url in self.urls:
            kept = self._scrapes[url]
            latest = kept[-1] if kept else None
            rate = window = None
            if len(kept) >= 2 and kept[-1].at > kept[0].at:
                window = kept[-1].at - kept[0].at
                # A counter that went down is a restarted worker: count from its new start.
                rate = max(0.0, kept[-1].records_in - kept[0].records_in) / window
            views.append(WorkerView(url, latest, self._errors[url], rate, window))
        return views
