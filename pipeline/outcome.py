"""What to do after a step failed: retry now, retry later, pause, or dead-letter. Pure.

The decision reads only the error's class flags (``retriable``, ``throttle``; see
:mod:`pipeline.ports`) and the instance's ``ambiguous``, never its message:

1. ``throttle`` (not the event's fault: the API budget is spent, the login is refused, the
   concurrency limit is reached) → ``PAUSE``: the engine stops consuming for a while; the
   attempt is not counted. The verdict's reason names the cause (the class's ``pause_cause``).
2. ambiguous (the write may or may not have happened: a timeout, or ``ambiguous=True``) on a
   step that is not idempotent (a plain create, a lead conversion) → ``DEAD_LETTER``. A blind
   retry could create a second record; a person checks Salesforce and redrives.
3. not retriable (validation, not found, no match, a bug) → ``DEAD_LETTER``.
4. retriable, and the step used all ``max_attempts`` across deliveries → ``DEAD_LETTER``.
5. retriable, with in-process attempts left → ``RETRY`` (after a backoff on the clock).
6. retriable, in-process attempts used up → ``RETRY_LATER`` (a delayed retry topic), or
   ``DEAD_LETTER`` when the step's policy has ``retry_topics: false``.

Every verdict also carries a stable ``code``, ``<origin>.<code>``, which is what a dead letter's
``actionflows.errors.reason`` header says (``docs/topics.md`` lists them):
``salesforce.<errorCode>`` for a permanent error Salesforce named (``salesforce.DUPLICATES_DETECTED``),
``salesforce.<class>`` for one it did not (``salesforce.server_error``), ``step.<class>`` for a
catalogue refusal (``step.no_match``), ``step.engine_error`` for a defect, and
``step.ambiguous_write`` / ``step.retries_exhausted`` for the dead letters of rules 2, 4 and 6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pipeline.ports import GatewayError
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
    reason: str  # for people: the log line, the step output
    code: str  # for machines: the stable reason code (see the module docstring)


def qualified_name(error: BaseException) -> str:
    """``salesforce.errors.InvalidFieldError``; builtins unqualified (``ValueError``)."""
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def reason_code(error: BaseException) -> str:
    """The stable code of a permanent failure (``salesforce.INVALID_EMAIL_ADDRESS``, …)."""
    if isinstance(error, GatewayError):
        code = error.error_code
        if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_]{1,80}", code):
            return f"salesforce.{code}"
        return f"salesforce.{_snake(type(error).__name__)}"
    if isinstance(getattr(type(error), "retriable", None), bool):  # a classified error
        return f"step.{_snake(type(error).__name__)}"
    return "step.engine_error"


def pause_cause(error: BaseException) -> str:
    """Why a throttled call pauses the worker, in words (the class's ``pause_cause``)."""
    cause = getattr(error, "pause_cause", None)
    return cause if isinstance(cause, str) else "Salesforce asks to slow down"


def pause_code(error: BaseException) -> str:
    """The same cause as a stable code, ``pause.<class's pause_code>`` (``pause.budget``,
    ``pause.login_refused`` …; ``pause.throttled`` for a throttle that names none)."""
    code = getattr(error, "pause_code", None)
    return f"pause.{code}" if isinstance(code, str) else "pause.throttled"


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
        error_class=qualified_name(error),
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
    name = qualified_name(error)
    if getattr(error, "throttle", False) is True:
        return Verdict(
            Disposition.PAUSE, f"{pause_cause(error)} ({name}: {_brief(error)})", pause_code(error)
        )
    if is_ambiguous(error) and not idempotent:
        return Verdict(
            Disposition.DEAD_LETTER,
            f"{name}: ambiguous failure of a non-idempotent write (the record may or may not "
            "exist); not retried, to never write twice. Check Salesforce, then redrive.",
            "step.ambiguous_write",
        )
    if not is_retriable(error):
        return Verdict(Disposition.DEAD_LETTER, f"{name}: permanent error", reason_code(error))
    exhausted = "step.retries_exhausted"
    if total_attempts >= policy.max_attempts:
        return Verdict(
            Disposition.DEAD_LETTER,
            f"{name}: still failing after {total_attempts} attempts",
            exhausted,
        )
    if attempt_in_process < policy.in_process_limit:
        return Verdict(Disposition.RETRY, f"{name}: transient error, retrying", "step.retry")
    if policy.retry_topics:
        return Verdict(
            Disposition.RETRY_LATER, f"{name}: transient error, retrying later", "step.retry_later"
        )
    return Verdict(
        Disposition.DEAD_LETTER,
        f"{name}: still failing after {attempt_in_process} attempts (retry topics disabled)",
        exhausted,
    )


def _brief(error: BaseException, limit: int = 200) -> str:
    """The error's own words, cut short: a pause reason is a log line, not a report."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
