"""What to do after a step failed: retry now, retry later, pause, or dead-letter. Pure.

The decision reads only the error's class flags (``retriable``, ``throttle``; see
:mod:`pipeline.ports`) and the instance's ``ambiguous``, never its message:

1. ``throttle`` (the org's API budget is near its end) → ``PAUSE``: the engine stops consuming
   for a while; the attempt is not counted.
2. ambiguous (the write may or may not have happened: a timeout, or ``ambiguous=True``) on a
   step that is not idempotent (a plain create, a lead conversion) → ``DEAD_LETTER``. A blind
   retry could create a second record; a person checks Salesforce and redrives.
3. not retriable (validation, not found, no match, a bug) → ``DEAD_LETTER``.
4. retriable, and the step used all ``max_attempts`` across deliveries → ``DEAD_LETTER``.
5. retriable, with in-process attempts left → ``RETRY`` (after a backoff on the clock).
6. retriable, in-process attempts used up → ``RETRY_LATER`` (a delayed retry topic), or
   ``DEAD_LETTER`` when the step's policy has ``retry_topics: false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.retry import RetryPolicy


class Disposition(StrEnum):
    RETRY = "retry"  # try again now, in process
    RETRY_LATER = "retry_later"  # hand the event to a delayed retry topic
    PAUSE = "pause"  # stop consuming for a while; not the event's fault
    DEAD_LETTER = "dead_letter"  # give up; publish the event with full context


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure as plain data, for step outcomes and dead-letter headers."""

    error_class: str
    message: str
    error_code: str | None = None
    status: int | None = None
    fields: tuple[str, ...] = ()
    retriable: bool = False
    ambiguous: bool = False
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    disposition: Disposition
    reason: str


def is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError)


def is_retriable(error: BaseException) -> bool:
    """Timeouts, and errors whose class says ``retriable = True`` (gateway or catalogue)."""
    return is_timeout(error) or getattr(error, "retriable", False) is True


def is_ambiguous(error: BaseException) -> bool:
    """Whether the call may have taken effect although it failed."""
    return is_timeout(error) or getattr(error, "ambiguous", False) is True


def error_info(error: BaseException) -> ErrorInfo:
    message = str(getattr(error, "message", "") or error) or type(error).__name__
    code = getattr(error, "error_code", None)
    status = getattr(error, "status", None)
    fields = getattr(error, "fields", ())
    retry_after = getattr(error, "retry_after", None)
    return ErrorInfo(
        error_class=type(error).__name__,
        message=message,
        error_code=code if isinstance(code, str) else None,
        status=status if isinstance(status, int) else None,
        fields=tuple(str(name) for name in fields) if isinstance(fields, tuple | list) else (),
        retriable=is_retriable(error),
        ambiguous=is_ambiguous(error),
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


def classify(
    error: BaseException,
    *,
    idempotent: bool,
    policy: RetryPolicy,
    attempt_in_process: int,
    total_attempts: int,
) -> Verdict:
    """Decide what follows a failed attempt (see the module docstring for the rules).

    ``attempt_in_process`` counts this run's attempts of the step, ``total_attempts`` adds the
    attempts of earlier deliveries; both include the attempt that just failed.
    """
    name = type(error).__name__
    if getattr(error, "throttle", False) is True:
        return Verdict(Disposition.PAUSE, f"{name}: Salesforce API budget exhausted, pausing")
    if is_ambiguous(error) and not idempotent:
        return Verdict(
            Disposition.DEAD_LETTER,
            f"{name}: ambiguous failure of a non-idempotent write (the record may or may not "
            "exist); not retried, to never write twice. Check Salesforce, then redrive.",
        )
    if not is_retriable(error):
        return Verdict(Disposition.DEAD_LETTER, f"{name}: permanent error")
    if total_attempts >= policy.max_attempts:
        return Verdict(
            Disposition.DEAD_LETTER, f"{name}: still failing after {total_attempts} attempts"
        )
    if attempt_in_process < policy.in_process_limit:
        return Verdict(Disposition.RETRY, f"{name}: transient error, retrying")
    if policy.retry_topics:
        return Verdict(Disposition.RETRY_LATER, f"{name}: transient error, retrying later")
    return Verdict(
        Disposition.DEAD_LETTER,
        f"{name}: still failing after {attempt_in_process} attempts (retry topics disabled)",
    )
