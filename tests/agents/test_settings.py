"""The worker's settings from the environment: what each variable means, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.app import create_app
from agents.settings import (
    KafkaSettings,
    WorkerSettings,
    budget_from_env,
    default_state_dir,
    external_id_fields_from_env,
    topics_from_env,
)


def test_replication_and_the_ledger_come_from_the_environment() -> None:
    """Replication is the cluster's to decide unless set; the ledger can be switched off."""
    assert topics_from_env({}).replication_factor is None
    assert topics_from_env({}).ledger is True
    settings = topics_from_env(
        {
            "ACTIONFLOWS_REPLICATION_FACTOR": "3",
            "ACTIONFLOWS_MIN_INSYNC_REPLICAS": "2",
            "ACTIONFLOWS_LEDGER": "off",
        }
    )
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert settings.ledger is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACTIONFLOWS_LEDGER": "maybe"}, "expected on or off"),
        ({"ACTIONFLOWS_REPLICATION_FACTOR": "0"}, "replication_factor must be at least 1"),
        (
            {"ACTIONFLOWS_REPLICATION_FACTOR": "1", "ACTIONFLOWS_MIN_INSYNC_REPLICAS": "2"},
            "cannot exceed",
        ),
    ],
)
def test_bad_topic_settings_name_the_variables(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        topics_from_env(env)
    assert "ACTIONFLOWS_" in str(error.value)


def test_external_id_fields_unset_none_or_listed() -> None:
    """Unset keeps the service's default; 'none' means plain creates; a list maps objects."""
    assert external_id_fields_from_env({}) is None
    assert external_id_fields_from_env({"ACTIONFLOWS_EXTERNAL_ID_FIELDS": "none"}) == {}
    assert external_id_fields_from_env(
        {"ACTIONFLOWS_EXTERNAL_ID_FIELDS": "Lead=Actionflows_Key__c, case=Ext_Id__c"}
    ) == {"lead": "Actionflows_Key__c", "case": "Ext_Id__c"}
    with pytest.raises(ValueError, match="not object=Field"):
        external_id_fields_from_env({"ACTIONFLOWS_EXTERNAL_ID_FIELDS": "lead"})


def test_budget_policy_from_the_environment() -> None:
    assert budget_from_env({}).probe_interval_s == 300.0
    policy = budget_from_env(
        {"ACTIONFLOWS_BUDGET_RESERVE": "0.2", "ACTIONFLOWS_BUDGET_PROBE": "5s"}
    )
    assert (policy.reserve_fraction, policy.probe_interval_s) == (0.2, 5.0)
    with pytest.raises(ValueError, match="ACTIONFLOWS_BUDGET_RESERVE"):
        budget_from_env({"ACTIONFLOWS_BUDGET_RESERVE": "1.5"})
    with pytest.raises(ValueError, match="ACTIONFLOWS_BUDGET_PROBE"):
        budget_from_env({"ACTIONFLOWS_BUDGET_PROBE": "soon"})


def test_state_lives_outside_the_working_tree() -> None:
    """faust's data folder goes under the state directory, never <cwd>/<app id>-data."""
    assert default_state_dir({"ACTIONFLOWS_STATE_DIR": "/srv/af"}) == Path("/srv/af")
    assert default_state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/actionflows")
    worker = WorkerSettings.from_env("k:9092", {"ACTIONFLOWS_STATE_DIR": "/srv/af"})
    assert worker.state_dir == Path("/srv/af")


def test_compression_is_off_unless_asked_for_and_reaches_both_producers(tmp_path: Path) -> None:
    """ACTIONFLOWS_COMPRESSION: none by default; a codec named goes to faust's producer."""
    assert WorkerSettings.from_env("k:9092", {}).compression is None
    worker = WorkerSettings.from_env(
        "k:9092", {"ACTIONFLOWS_COMPRESSION": "ZSTD", "ACTIONFLOWS_STATE_DIR": str(tmp_path)}
    )
    assert worker.compression == "zstd"
    assert create_app(worker).conf.producer_compression_type == "zstd"
    with pytest.raises(ValueError, match="ACTIONFLOWS_COMPRESSION must be"):
        WorkerSettings.from_env("k:9092", {"ACTIONFLOWS_COMPRESSION": "brotli"})


def test_local_cluster_size() -> None:
    assert KafkaSettings.from_env({}).local_brokers == 1
    assert KafkaSettings.from_env({"ACTIONFLOWS_KAFKA_BROKERS": "3"}).local_brokers == 3
    with pytest.raises(ValueError, match="ACTIONFLOWS_KAFKA_BROKERS must be a number"):
        KafkaSettings.from_env({"ACTIONFLOWS_KAFKA_BROKERS": "three"})
