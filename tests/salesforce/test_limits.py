"""Sforce-Limit-Info parsing: used/limit, never remaining, in every documented form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from salesforce.limits import Usage, parse_limit_info


def test_plain_api_usage() -> None:
    """'api-usage=18/5000' is 18 used of 5000."""
    usage = parse_limit_info("api-usage=18/5000", observed_at=1.0)
    assert usage is not None
    assert usage.api == Usage(18, 5000)
    assert usage.api.remaining == 4982
    assert usage.observed_at == 1.0
    assert str(usage) == "18/5000 (0.4%)"


def test_bursts_and_per_app() -> None:
    """api-bursts and the per-app pilot form are read beside api-usage."""
    usage = parse_limit_info(
        "api-usage=25/5000; api-bursts=1/750; per-app-api-usage=17/250(appName=sample app)"
    )
    assert usage is not None
    assert usage.api == Usage(25, 5000)
    assert usage.bursts == Usage(1, 750)
    assert usage.per_app == {"sample app": Usage(17, 250)}


def test_absent_or_unknown_headers() -> None:
    """No header, or a header with no counter we know, is None rather than a guess."""
    assert parse_limit_info(None) is None
    assert parse_limit_info("") is None
    assert parse_limit_info("something-else=1/2") is None
    assert parse_limit_info("api-usage=garbage") is None


def test_overrun_is_not_negative() -> None:
    """Orgs may run a little over the limit: remaining floors at zero, fraction exceeds 1."""
    usage = Usage(15010, 15000)
    assert usage.remaining == 0
    assert usage.fraction > 1


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_round_trip(used: int, limit: int) -> None:
    """Any used/limit pair written in the header's format is read back exactly."""
    usage = parse_limit_info(f"api-usage={used}/{limit}")
    assert usage is not None
    assert usage.api == Usage(used, limit)
