"""What the operator commands (``replay``, ``dlq``) share: where Kafka is, which topics, how
errors and times are shown. Settings come from :mod:`agents.settings`, as for the worker."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from agents.ops.slices import SliceError
from agents.settings import KafkaSettings, topics_from_env
from pipeline.errors import FlowLoadError
from salesforce.errors import SalesforceError
from salesforce.settings import SettingsError
from topics.catalogue import Catalogue
from topics.redaction import scrub

#: Failures a command reports in one line and exits 1 for; anything else is a defect.
EXPECTED_ERRORS = (
    SliceError,
    KafkaError,
    TimeoutError,
    OSError,
    FlowLoadError,
    SettingsError,
    SalesforceError,
)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="the Kafka cluster (default: $KAFKA_BOOTSTRAP_SERVERS)",
    )


def kafka_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> KafkaSettings:
    """Where the cluster is (``--bootstrap-servers`` or the environment) and how to connect
    to it (TLS and SASL, ``KAFKA_SECURITY_PROTOCOL`` …, as the worker does)."""
    try:
        settings = KafkaSettings.from_env()
    except ValueError as error:
        parser.error(str(error))
    bootstrap = args.bootstrap_servers or settings.bootstrap_servers
    if not bootstrap:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap-servers")
    return dataclasses.replace(settings, bootstrap_servers=bootstrap)


def catalogue_from_env(parser: argparse.ArgumentParser) -> Catalogue:
    """The deployment's topics (``ACTIONFLOWS_TOPIC_PREFIX`` and friends), as the worker sees them."""
    try:
        return Catalogue.build(topics_from_env())
    except ValueError as error:
        parser.error(str(error))


def describe(error: BaseException) -> str:
    """One line for the operator; credentials scrubbed whatever the error carried."""
    text = str(error) or type(error).__name__
    return scrub(f"{type(error).__name__}: {text}" if isinstance(error, KafkaError) else text)


def format_ms(epoch_ms: object) -> str:
    """An epoch-milliseconds time as UTC text; a value that is not one is shown as it is."""
    if epoch_ms is None:
        return "-"
    if not isinstance(epoch_ms, int | float) or isinstance(epoch_ms, bool):
        return repr(epoch_ms)[:40]
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):  # out of datetime's range
        return f"{epoch_ms} ms"
