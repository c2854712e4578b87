"""localkafka without a JVM: a cluster's configuration, its kept layout, and clear refusals.

The JVMs themselves are exercised by every integration test (one node) and by
tests/integration/test_cluster.py (three nodes, a node killed and started again on its data).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localkafka import BrokerError, BrokerOptions, Listener, LocalBroker
from localkafka.config import Layout, NodeAddress, server_properties


def layout(nodes: int) -> Layout:
    return Layout(
        "AAAAAAAAAAAAAAAAAAAAAA",
        "4.4.0",
        tuple(NodeAddress(n, {"PLAINTEXT": 9000 + n}, 9100 + n) for n in range(1, nodes + 1)),
    )


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_three_node_cluster_has_static_voters_and_replicated_internal_topics() -> None:
    """Every node votes; offsets and transaction state get 3 copies, 2 in sync."""
    cluster = layout(3)
    config = properties(
        server_properties(cluster, cluster.nodes[1], (Listener(),), Path("/d"), partitions=1)
    )
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["transaction.state.log.min.isr"] == "2"


def test_a_single_node_keeps_one_copy() -> None:
    single = layout(1)
    config = properties(server_properties(single, single.nodes[0], (Listener(),), Path("/d"), 1))
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"


def test_the_layout_is_kept_for_a_restart(tmp_path: Path) -> None:
    """cluster.json gives the same id, version and ports back."""
    cluster = layout(3)
    cluster.save(tmp_path)
    assert Layout.load(tmp_path) == cluster
    assert Layout.load(tmp_path / "elsewhere") is None


def test_a_kept_folder_is_started_again_only_as_the_same_cluster(tmp_path: Path) -> None:
    """A data folder remembers its cluster; asking it to be another is refused, saying how."""
    first = LocalBroker(BrokerOptions(brokers=3, data_dir=tmp_path))
    again = LocalBroker(BrokerOptions(brokers=3, data_dir=tmp_path))
    assert again.bootstrap_servers == first.bootstrap_servers
    with pytest.raises(BrokerError, match="3 node"):
        LocalBroker(BrokerOptions(brokers=1, data_dir=tmp_path))
    with pytest.raises(BrokerError, match=re.escape("Kafka 4.4.0, not 3.9.1")):
        LocalBroker(BrokerOptions(brokers=3, data_dir=tmp_path, kafka_version="3.9.1"))


def test_a_fixed_port_numbers_the_nodes_in_turn(tmp_path: Path) -> None:
    broker = LocalBroker(BrokerOptions(brokers=3, port=19092, data_dir=tmp_path))
    assert broker.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"brokers": 0}, "at least one node"),
        ({"listeners": ()}, "at least one client listener"),
        ({"listeners": (Listener(), Listener())}, "distinct"),
        ({"port": 65535, "brokers": 3}, "no room"),
    ],
)
def test_impossible_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerOptions(**options)  # type: ignore[arg-type]


def test_listener_names_are_kafka_listener_names() -> None:
    with pytest.raises(ValueError, match="upper-case"):
        Listener("plain")
    with pytest.raises(ValueError, match="controllers' own"):
        Listener("CONTROLLER")
