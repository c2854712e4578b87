"""The topic catalogue: names, roles, configs and the retry tiers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topics.catalogue import (
    DAY_MS,
    Catalogue,
    CatalogueSettings,
    TopicRole,
    format_delay,
    parse_delay,
)


def test_default_names_follow_the_convention() -> None:
    """Every default topic is named actionflows.<purpose>."""
    names = [spec.name for spec in Catalogue.build().all()]
    assert names == [
        "actionflows.tickets",
        "actionflows.interactions",
        "actionflows.step-outputs",
        "actionflows.run-results",
        "actionflows.dead-letters",
        "actionflows.retry.30s",
        "actionflows.retry.5m",
        "actionflows.retry.1h",
        "actionflows.ledger",
        "actionflows.dlq-redriven",
    ]


def test_input_topics_are_configurable() -> None:
    """Operators may point the inputs at existing topics; outputs keep the prefix."""
    catalogue = Catalogue.build(
        CatalogueSettings(
            prefix="acme-af", tickets_topic="zendesk.webhooks", interactions_topic="calls"
        )
    )
    assert [spec.name for spec in catalogue.inputs] == ["zendesk.webhooks", "calls"]
    assert catalogue.one(TopicRole.DEAD_LETTERS).name == "acme-af.dead-letters"


def test_config_is_ready_for_an_admin_client() -> None:
    """config() gives string-valued topic configs with cleanup policy and retention."""
    catalogue = Catalogue.build()
    assert catalogue.get("actionflows.dead-letters").config() == {
        "cleanup.policy": "delete",
        "min.insync.replicas": "1",
        "retention.ms": str(30 * DAY_MS),
    }
    assert all(
        isinstance(value, str) for spec in catalogue.all() for value in spec.config().values()
    )


@pytest.mark.parametrize(
    ("brokers", "settings", "expected"),
    [
        (1, CatalogueSettings(), (1, 1)),
        (2, CatalogueSettings(), (1, 1)),
        (3, CatalogueSettings(), (3, 2)),
        (5, CatalogueSettings(), (3, 2)),
        (5, CatalogueSettings(replication_factor=5), (5, 2)),
        (3, CatalogueSettings(replication_factor=2), (2, 1)),
        (3, CatalogueSettings(min_insync_replicas=3), (3, 3)),
        (1, CatalogueSettings(replication_factor=3, min_insync_replicas=2), (3, 2)),
    ],
)
def test_replication_follows_the_cluster_unless_set(
    brokers: int, settings: CatalogueSettings, expected: tuple[int, int]
) -> None:
    """3 copies, 2 in sync on three or more brokers, else 1 and 1; set values win everywhere."""
    assert settings.replication(brokers) == expected
    catalogue = Catalogue.build(settings, brokers=brokers)
    assert {(s.replication_factor, s.min_insync_replicas) for s in catalogue.all()} == {expected}
    assert {s.config()["min.insync.replicas"] for s in catalogue.all()} == {str(expected[1])}


def test_replication_settings_are_checked() -> None:
    """Zero copies, or more in sync than there are copies, are refused at construction."""
    with pytest.raises(ValueError, match="replication_factor must be at least 1"):
        CatalogueSettings(replication_factor=0)
    with pytest.raises(ValueError, match="cannot exceed"):
        CatalogueSettings(replication_factor=2, min_insync_replicas=3)


def test_ledger_is_compacted_and_optional() -> None:
    """The ledger is compacted and expires with the dead letters; absent when disabled."""
    settings = CatalogueSettings()
    ledger = Catalogue.build(settings).one(TopicRole.LEDGER)
    assert ledger.cleanup_policy == "compact,delete"
    assert ledger.config()["retention.ms"] == str(settings.dead_letter_retention_ms)
    assert ledger.config()["cleanup.policy"] == "compact,delete"
    assert Catalogue.build(CatalogueSettings(ledger=False)).by_role(TopicRole.LEDGER) == ()


def test_retry_tiers_are_ordered_and_the_last_one_repeats() -> None:
    """retry_tier_for(n) walks the tiers in order and stays on the longest one."""
    catalogue = Catalogue.build(CatalogueSettings(retry_delays_ms=(5_000, 60_000)))
    assert [spec.delay_ms for spec in catalogue.retry_tiers] == [5_000, 60_000]
    assert catalogue.retry_tier_for(1).name == "actionflows.retry.5s"
    assert catalogue.retry_tier_for(2).name == "actionflows.retry.1m"
    assert catalogue.retry_tier_for(7).name == "actionflows.retry.1m"
    with pytest.raises(ValueError, match="start at 1"):
        catalogue.retry_tier_for(0)


def test_retry_topics_outlive_their_delay() -> None:
    """A retry topic keeps records at least twice its delay."""
    catalogue = Catalogue.build(CatalogueSettings(retry_delays_ms=(30 * DAY_MS,)))
    (tier,) = catalogue.retry_tiers
    assert tier.retention_ms is not None
    assert tier.retention_ms >= 2 * 30 * DAY_MS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": "bad prefix"}, "illegal Kafka topic name"),
        ({"tickets_topic": "a/b"}, "illegal Kafka topic name"),
        ({"partitions": 0}, "at least 1"),
        ({"retry_delays_ms": (60_000, 30_000)}, "strictly increasing"),
        ({"retry_delays_ms": (0,)}, "must be positive"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object], message: str) -> None:
    """Settings fail on construction, naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        CatalogueSettings(**kwargs)  # type: ignore[arg-type]


def test_an_input_may_not_reuse_an_output_name() -> None:
    """Two roles on one topic would loop the service's own output back in."""
    with pytest.raises(ValueError, match="collide"):
        Catalogue.build(CatalogueSettings(tickets_topic="actionflows.step-outputs"))


def test_only_one_per_role_for_one() -> None:
    """one() refuses roles with several topics."""
    with pytest.raises(KeyError, match="expected one"):
        Catalogue.build().one(TopicRole.INPUT)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("2d", 2 * DAY_MS), ("250ms", 250)],
)
def test_parse_delay_reads_settings_text(text: str, ms: int) -> None:
    """Delays are written with a unit suffix."""
    assert parse_delay(text) == ms


@pytest.mark.parametrize("text", ["", "5", "0s", "1w", "-5s", "5 m"])
def test_parse_delay_rejects_nonsense(text: str) -> None:
    """Anything but <positive integer><ms|s|m|h|d> is refused."""
    with pytest.raises(ValueError, match="not a delay"):
        parse_delay(text)


@given(st.integers(min_value=1, max_value=10 * 365 * DAY_MS))
def test_format_delay_round_trips(delay_ms: int) -> None:
    """parse_delay(format_delay(ms)) == ms for every positive delay."""
    assert parse_delay(format_delay(delay_ms)) == delay_ms
