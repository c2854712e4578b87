"""Provisioning of a local Apache Kafka broker from Maven Central jars (tests, CI, demos)."""

from localkafka.broker import DEFAULT_KAFKA_VERSION, BrokerError, BrokerOptions, LocalBroker

__all__ = ["DEFAULT_KAFKA_VERSION", "BrokerError", "BrokerOptions", "LocalBroker"]
