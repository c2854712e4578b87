"""Provisioning of a local Apache Kafka, one node or a KRaft cluster, from Maven Central jars."""

from localkafka.broker import DEFAULT_KAFKA_VERSION, BrokerError, BrokerOptions, LocalBroker
from localkafka.config import Listener

__all__ = ["DEFAULT_KAFKA_VERSION", "BrokerError", "BrokerOptions", "Listener", "LocalBroker"]
