"""The retry policy's backoff bounds, and the classification of a failure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.catalogue import MissingInput
from pipeline.outcome import Disposition, classify, error_info
from pipeline.retry import RetryPolicy, backoff_ceiling, backoff_delay
from tests.pipeline.flow_fakes import FixedRandom, Permanent, Throttled, Transient

policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 50),
    max_attempts_in_process=st.integers(1, 10),
    initial_s=st.floats(0, 10),
    multiplier=st.floats(1, 1e300),
    max_s=st.floats(0, 600),
)
draws = st.floats(0, 1, exclude_max=True)


@given(policies, st.integers(1, 10_000), draws)
def test_backoff_stays_within_zero_and_max(policy: RetryPolicy, attempt: int, draw: float) -> None:
    """Every delay lies in [0, max_s], whatever the attempt and the random draw."""
    delay = backoff_delay(policy, attempt, FixedRandom(draw))
    assert 0 <= delay <= policy.max_s


@given(policies, st.integers(1, 10_000), draws)
def test_backoff_grows_with_the_attempt(policy: RetryPolicy, attempt: int, draw: float) -> None:
    """For the same random draw, a later attempt never waits less; the ceiling never shrinks."""
    rng = FixedRandom(draw)
    assert backoff_delay(policy, attempt + 1, rng) >= backoff_delay(policy, attempt, rng)
    assert backoff_ceiling(policy, attempt + 1) >= backoff_ceiling(policy, attempt)


@given(policies, st.integers(1, 10_000), draws)
def test_jitter_keeps_at_least_half_the_ceiling(
    policy: RetryPolicy, attempt: int, draw: float
) -> None:
    """Equal jitter: the delay is between half the ceiling and the ceiling."""
    ceiling = backoff_ceiling(policy, attempt)
    assert ceiling / 2 <= backoff_delay(policy, attempt, FixedRandom(draw)) <= ceiling


def test_default_backoff_doubles_from_the_initial_delay() -> None:
    """With the defaults, ceilings are 0.2, 0.4, 0.8 … capped at 10 s."""
    policy = RetryPolicy()
    assert [round(backoff_ceiling(policy, n), 3) for n in (1, 2, 3, 7, 20)] == [
        0.2,
        0.4,
        0.8,
        10.0,
        10.0,
    ]


def test_policy_rejects_nonsense() -> None:
    """A policy with no attempts or a negative delay cannot be built."""
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(initial_s=-1)


POLICY = RetryPolicy(max_attempts=5, max_attempts_in_process=3)


def verdict(
    error: BaseException,
    *,
    idempotent: bool = True,
    attempt: int = 1,
    total: int | None = None,
    policy: RetryPolicy = POLICY,
) -> Disposition:
    return classify(
        error,
        idempotent=idempotent,
        policy=policy,
        attempt_in_process=attempt,
        total_attempts=attempt if total is None else total,
    ).disposition


def test_transient_errors_retry_in_process_then_later_then_dead_letter() -> None:
    """Retriable: retry now while in-process attempts last, then a retry topic, then give up."""
    assert verdict(Transient("503"), attempt=1) is Disposition.RETRY
    assert verdict(Transient("503"), attempt=3) is Disposition.RETRY_LATER
    assert verdict(Transient("503"), attempt=1, total=5) is Disposition.DEAD_LETTER
    no_topics = RetryPolicy(max_attempts_in_process=2, retry_topics=False)
    assert verdict(Transient("503"), attempt=2, policy=no_topics) is Disposition.DEAD_LETTER


def test_permanent_errors_go_straight_to_the_dead_letter_topic() -> None:
    """Validation errors, catalogue errors and plain bugs are never retried."""
    assert verdict(Permanent("bad field")) is Disposition.DEAD_LETTER
    assert verdict(MissingInput("no name")) is Disposition.DEAD_LETTER
    assert verdict(KeyError("bug")) is Disposition.DEAD_LETTER


def test_throttling_pauses_whatever_the_attempts() -> None:
    """A spent API budget pauses consumption, even on the last attempt."""
    assert verdict(Throttled("limit"), attempt=3, total=5) is Disposition.PAUSE


def test_ambiguous_failures_retry_only_idempotent_steps() -> None:
    """A timeout or ambiguous error is retried for an upsert, dead-lettered for a plain create."""
    assert verdict(TimeoutError(), idempotent=True) is Disposition.RETRY
    assert verdict(TimeoutError(), idempotent=False) is Disposition.DEAD_LETTER
    ambiguous = Transient("connection reset after POST", ambiguous=True)
    result = classify(
        ambiguous, idempotent=False, policy=POLICY, attempt_in_process=1, total_attempts=1
    )
    assert result.disposition is Disposition.DEAD_LETTER
    assert "non-idempotent" in result.reason


def test_error_info_carries_the_salesforce_details() -> None:
    """The dead-letter context keeps class, message, errorCode, fields and the flags."""
    info = error_info(
        Permanent(
            "Email: invalid", error_code="INVALID_EMAIL_ADDRESS", status=400, fields=["Email"]
        )
    )
    assert (info.error_class, info.message, info.error_code, info.status, info.fields) == (
        "tests.pipeline.flow_fakes.Permanent",
        "Email: invalid",
        "INVALID_EMAIL_ADDRESS",
        400,
        ("Email",),
    )
    assert not info.retriable
    assert error_info(TimeoutError()).message == "TimeoutError"
    assert error_info(TimeoutError()).retriable


def code(error: BaseException, **kwargs: int | bool) -> str:
    attempt = int(kwargs.get("attempt", 1))
    return classify(
        error,
        idempotent=bool(kwargs.get("idempotent", True)),
        policy=POLICY,
        attempt_in_process=attempt,
        total_attempts=int(kwargs.get("total", attempt)),
    ).code


def test_every_dead_letter_has_a_stable_reason_code() -> None:
    """<origin>.<code>: Salesforce's errorCode, a catalogue refusal, a defect, or the rule."""
    assert (
        code(Permanent("x", error_code="DUPLICATES_DETECTED")) == "salesforce.DUPLICATES_DETECTED"
    )
    assert code(Permanent("x")) == "salesforce.permanent"
    assert code(Permanent("x", error_code="not a code!")) == "salesforce.permanent"
    assert code(MissingInput("no name")) == "step.missing_input"
    assert code(KeyError("bug")) == "step.engine_error"
    assert code(TimeoutError(), idempotent=False) == "step.ambiguous_write"
    assert code(Transient("503"), total=5) == "step.retries_exhausted"
    assert code(Transient("503"), attempt=3) == "step.retry_later"


def test_a_pause_names_its_cause() -> None:
    """The reason of a pause says why (the class's pause_cause), not a generic budget line."""

    class LoginRefused(Throttled):
        pause_cause = "Salesforce refused the login"

    result = classify(
        LoginRefused("invalid_grant: expired"),
        idempotent=True,
        policy=POLICY,
        attempt_in_process=1,
        total_attempts=1,
    )
    assert result.disposition is Disposition.PAUSE
    assert result.reason.startswith("Salesforce refused the login (")
    assert "invalid_grant: expired" in result.reason
    assert "budget" not in result.reason


def test_error_classes_are_qualified() -> None:
    """Step errors name their class with its module, as decode errors do."""
    assert error_info(MissingInput("x")).error_class == "pipeline.catalogue.errors.MissingInput"
    assert error_info(KeyError("x")).error_class == "KeyError"
