"""The retry policy of a step, as data, and the pure backoff function.

A step is tried up to ``max_attempts_in_process`` times inside one run, sleeping
:func:`backoff_delay` between tries on the injected clock. When those are used up on a
transient failure, the run ends ``retry_later`` and the engine moves the event to a delayed
retry topic; across all deliveries a step gets at most ``max_attempts`` attempts, then the
event is dead-lettered. ``retry_topics: false`` dead-letters as soon as the in-process
attempts are used up.

These are the step's only attempts: the gateway under the runner sends each call once and
retries nothing itself, so an attempt here is one call to Salesforce (a re-authentication after
an expired session replays the call, and is not an attempt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Random(Protocol):
    """What backoff needs of a random source: ``random.Random`` fits, so does a test stub."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a step is retried. The defaults suit a Salesforce call.

    - ``max_attempts`` (5): attempts across every delivery (in process and via retry topics).
    - ``max_attempts_in_process`` (3): attempts within one run before handing over to the
      retry topics; never more than ``max_attempts``.
    - ``initial_s`` (0.2), ``multiplier`` (2.0), ``max_s`` (10.0): the exponential backoff;
      the delay before attempt n+1 lies in [c/2, c] with c = min(max_s, initial_s·multiplier^(n-1)).
    - ``retry_topics`` (True): whether a still-failing transient error goes to a retry topic.
    - ``timeout_s`` (30.0): how long one call may take; a timeout counts as a transient failure
      (and as an ambiguous one for a non-idempotent write, which is then not retried).
    """

    max_attempts: int = 5
    max_attempts_in_process: int = 3
    initial_s: float = 0.2
    multiplier: float = 2.0
    max_s: float = 10.0
    retry_topics: bool = True
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_attempts_in_process < 1:
            raise ValueError("max_attempts and max_attempts_in_process must be at least 1")
        if self.initial_s < 0 or self.max_s < 0 or self.multiplier < 1 or self.timeout_s <= 0:
            raise ValueError(
                "backoff needs initial_s >= 0, max_s >= 0, multiplier >= 1 and timeout_s > 0"
            )

    @property
    def in_process_limit(self) -> int:
        """Attempts allowed in one run: the smaller of the two limits."""
        return min(self.max_attempts, self.max_attempts_in_process)


def backoff_ceiling(policy: RetryPolicy, attempt: int) -> float:
    """The largest delay after failed attempt ``attempt`` (1-based); non-decreasing in it."""
    ceiling = policy.initial_s
    # Multiply step by step and stop at max_s: no float power can overflow, whatever the inputs.
    for _ in range(min(max(attempt, 1) - 1, 1000)):  # attempts are far fewer; bound the loop
        if ceiling >= policy.max_s:
            break
        ceiling *= policy.multiplier
    return min(policy.max_s, ceiling)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: Random) -> float:
    """Seconds to wait after failed attempt ``attempt``: "equal jitter" in [ceiling/2, ceiling].

    Pure given ``rng``: half the ceiling is fixed, so the delay grows with the attempt (for a
    given random draw), and half is random, so that many failing events do not retry in step.
    """
    ceiling = backoff_ceiling(policy, attempt)
    draw = min(max(rng.random(), 0.0), 1.0)
    return ceiling / 2 + draw * ceiling / 2
