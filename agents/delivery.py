"""Kafka faults, told apart: those that pass (wait and try again) and those that never will.

A produce can fail because the broker is unavailable, a leader moved or a request timed out:
those pass, and the worker waits them out with :data:`INFRA_BACKOFF`. It can also fail because
the record itself is unacceptable (too large for the topic or the producer, or invalid): then
the same record fails every time, and :func:`refused` says so, so that the caller replaces it
(the publisher's bounded form) or reports it (the ledger) instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from pipeline.retry import RetryPolicy, backoff_delay

#: Backoff while an infrastructure fault lasts (the broker, the ledger): 0.1 s doubling to 5 s.
INFRA_BACKOFF = RetryPolicy(initial_s=0.1, multiplier=2.0, max_s=5.0)
_JITTER = random.Random()  # noqa: S311 - backoff jitter, nothing secret

_REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
)
_INVALID_RECORD = 87  # INVALID_RECORD: aiokafka has no class for it


def refused(error: BaseException) -> bool:
    """Whether the broker or the producer refuses this record for good (following the causes:
    faust wraps aiokafka's errors)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _REFUSED) or getattr(seen, "errno", None) == _INVALID_RECORD:
            return True
        seen = seen.__cause__
    return False


def backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row of the infrastructure."""
    return backoff_delay(INFRA_BACKOFF, failures, _JITTER)


Send = Callable[[], Awaitable[Awaitable[Any]]]  # a producer's send: queued now, acknowledged later


async def produce_all(sends: Iterable[Send]) -> list[Any]:
    """Queue every send, then wait for all their acknowledgements (one produce request where the
    producer can): each one's record metadata, or the exception that refused it."""
    queued: list[Awaitable[Any] | BaseException] = []
    for send in sends:
        try:
            queued.append(await send())
        except Exception as error:  # refused before it was queued (its size), or no producer
            queued.append(error)
    acks = iter(
        await asyncio.gather(
            *(q for q in queued if not isinstance(q, BaseException)), return_exceptions=True
        )
    )
    return [q if isinstance(q, BaseException) else next(acks) for q in queued]
