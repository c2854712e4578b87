"""Publishing outcomes: every record ends up on its topic, durable, or the worker is stopping.

:class:`FaustPublisher` sends through the faust app's producer (acks=all) and returns once every
record is acknowledged. A refused record is one of two kinds:

- **a failure that will pass** (the broker is unavailable, a leader moved, a timeout): the
  records are sent again after a capped backoff, for as long as it takes, unless the worker
  stops (then :class:`~agents.engine.EngineStopped`, and the input stays unacknowledged);
- **a failure that never will** (the record is too large for the topic's ``max.message.bytes``
  or the producer's ``max_request_size``, or the broker calls it invalid): sending it again
  would fail forever and hold its partition, so it is replaced by its bounded form
  (:mod:`topics.bounded`) and that is published. A refused record is first sent again on its
  own (a batch is refused whole, so its neighbours fail with it), then bounded to half its size
  at each further refusal.

Records are bounded before the first send already when they exceed the limits read at start
(:func:`agents.worker.read_limits`), so the broker rarely sees one it must refuse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import faust

from agents.delivery import backoff, produce_all, refused
from agents.engine import EngineStopped
from agents.outcomes import Outbound
from topics import bounded
from topics.catalogue import Catalogue, TopicRole

log = logging.getLogger(__name__)

#: Fields of a step output that are its metadata: kept when the record must be cut.
STEP_OUTPUT_METADATA = frozenset(
    {
        "schema", "flow", "flow_version", "run_id", "event_id", "ticket_id", "step", "action",
        "object", "status", "attempt", "duration_ms", "salesforce_id", "idempotency_key", "at",
    }
)  # fmt: skip
#: Fields of a run result that are its metadata: kept when the record must be cut.
RUN_RESULT_METADATA = frozenset(
    {
        "schema", "flow", "version", "run_id", "event_id", "ticket_id", "status", "steps",
        "failed_step", "duration_ms", "attempts", "at",
    }
)  # fmt: skip


@dataclass(slots=True)
class _Pending:
    original: Outbound
    record: Outbound
    limit: int
    alone: bool = False  # send it on its own: it was refused in a batch


class FaustPublisher:
    """Publishes through the app's producer and waits for every acknowledgement."""

    def __init__(
        self,
        app: faust.App,
        stopping: asyncio.Event,
        catalogue: Catalogue,
        *,
        max_request_size: int,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.stopping = stopping
        self.max_request_size = max_request_size
        self.limits: Mapping[str, int] = limits or {}
        self._metadata = {
            spec.name: STEP_OUTPUT_METADATA if spec.role is TopicRole.STEP_OUTPUTS else
            RUN_RESULT_METADATA for spec in catalogue.all()
            if spec.role in (TopicRole.STEP_OUTPUTS, TopicRole.RUN_RESULTS)
        }  # fmt: skip
        self.bounded = 0  # records replaced by their bounded form

    def limit(self, topic: str) -> int:
        """The largest record ``topic`` takes: its ``max.message.bytes`` as read at start, and
        never more than the producer's ``max_request_size``."""
        return min(self.limits.get(topic, self.max_request_size), self.max_request_size)

    async def publish(self, records: Sequence[Outbound]) -> None:
        pending = [self._fit(_Pending(r, r, self.limit(r.topic))) for r in records]
        failures = 0
        while pending:
            together = [p for p in pending if not p.alone]
            results = await self._send([p.record for p in together])
            for p in pending:
                if p.alone:
                    (result,) = await self._send([p.record])
                    results.append(result)
            again: list[_Pending] = []
            transient: BaseException | None = None
            for p, result in zip(together + [p for p in pending if p.alone], results, strict=True):
                if result is None:
                    continue
                if refused(result) and p.limit > bounded.MIN_LIMIT:
                    again.append(self._refit(p, result))
                else:
                    transient = result
                    again.append(p)
            if transient is not None:
                failures += 1
                await self._back_off(len(again), transient, failures)
            pending = again

    async def _send(self, records: Sequence[Outbound]) -> list[BaseException | None]:
        """Send ``records`` together; each one's error, or None once it is acknowledged."""
        producer = self.app.producer
        results = await produce_all(
            partial(producer.send, r.topic, r.key, r.value, None, None, r.headers) for r in records
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    def _fit(self, pending: _Pending) -> _Pending:
        """``pending`` with its record bounded to its limit (unchanged when it fits)."""
        original = pending.original
        metadata = self._metadata.get(original.topic)
        if metadata is not None:
            key, value, headers = bounded.bound_document(
                original.key, original.value, original.headers, pending.limit, keep=metadata
            )
        else:
            key, value, headers = bounded.bound_payload(
                original.key, original.value, original.headers, pending.limit
            )
        if value is not original.value or key is not original.key:
            self.bounded += 1
            log.warning(
                "a record for %s is %d bytes, over its limit of %d: publishing its bounded form",
                original.topic,
                bounded.record_size(original.key, original.value, original.headers),
                pending.limit,
            )
            pending.record = Outbound(original.topic, key, value, headers)
        return pending

    def _refit(self, pending: _Pending, error: BaseException) -> _Pending:
        """A refused record: send it alone first, then bound it to half its size each time."""
        if not pending.alone:
            pending.alone = True
            return pending
        record = pending.record
        size = bounded.record_size(record.key, record.value, record.headers)
        pending.limit = max(min(pending.limit, size) // 2, bounded.MIN_LIMIT)
        log.warning("%s refused a %d-byte record (%r)", record.topic, size, error)
        return self._fit(pending)

    async def _back_off(self, count: int, error: BaseException, failures: int) -> None:
        if self.stopping.is_set():
            raise EngineStopped
        delay = backoff(failures)
        log.warning("publishing %d records failed (%r); retrying in %.1fs", count, error, delay)
        try:
            await asyncio.wait_for(self.stopping.wait(), delay)
        except TimeoutError:
            return
        raise EngineStopped
