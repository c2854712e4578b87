"""The topic catalogue: every topic the service reads or writes, and how to create it.

Naming convention: ``<prefix>.<purpose>`` with the prefix ``actionflows`` by default, purposes
in lower-case kebab words, and retry tiers as ``<prefix>.retry.<delay>`` where the delay is
written ``30s`` / ``5m`` / ``1h`` / ``1d``. The two input topics may be renamed (to read topics
another team already produces); everything the service writes follows the convention.

The catalogue is built from a frozen :class:`CatalogueSettings` passed in by the caller; this
module never reads the environment (``agents/`` settings do). ``docs/topics.md`` is the
human-readable version of :func:`Catalogue.all`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

DAY_MS = 86_400_000
_LEGAL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_DELAY = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}


class TopicRole(StrEnum):
    INPUT = "input"
    STEP_OUTPUTS = "step-outputs"
    RUN_RESULTS = "run-results"
    DEAD_LETTERS = "dead-letters"
    RETRY = "retry"
    LEDGER = "ledger"
    REDRIVE_MARKERS = "redrive-markers"


def format_delay(delay_ms: int) -> str:
    """The largest whole unit: 30000 → ``30s``, 300000 → ``5m``, 1500 → ``1500ms``."""
    if delay_ms <= 0:
        raise ValueError(f"retry delay must be positive, got {delay_ms} ms")
    for unit in ("d", "h", "m", "s"):
        if delay_ms % _UNIT_MS[unit] == 0:
            return f"{delay_ms // _UNIT_MS[unit]}{unit}"
    return f"{delay_ms}ms"


def parse_delay(text: str) -> int:
    """``30s`` / ``5m`` / ``1h`` / ``1d`` / ``250ms`` → milliseconds (what settings accept)."""
    match = _DELAY.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"not a delay: {text!r} (expected e.g. 30s, 5m, 1h)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def check_topic_name(name: str) -> str:
    if not _LEGAL_NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"illegal Kafka topic name {name!r}: use 1-249 of [A-Za-z0-9._-]")
    return name


@dataclass(frozen=True, slots=True)
class CatalogueSettings:
    """What an operator may change. Validated on construction."""

    prefix: str = "actionflows"
    tickets_topic: str | None = None  # default <prefix>.tickets
    interactions_topic: str | None = None  # default <prefix>.interactions
    partitions: int = 12  # per-ticket ordering; parallelism across tickets is bounded by this
    # None: decided by the cluster's size (see ``replication``): 3 copies, 2 in sync for a write
    # to count, on three or more brokers; 1 and 1 on a smaller cluster.
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    input_retention_ms: int = 7 * DAY_MS
    output_retention_ms: int = 14 * DAY_MS
    dead_letter_retention_ms: int = 30 * DAY_MS  # long enough to redrive after a holiday
    retry_delays_ms: tuple[int, ...] = (30_000, 300_000, 3_600_000)
    ledger: bool = True

    def __post_init__(self) -> None:
        check_topic_name(self.prefix)
        for name in (self.tickets_topic, self.interactions_topic):
            if name is not None:
                check_topic_name(name)
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        for name in ("replication_factor", "min_insync_replicas"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        rf, isr = self.replication_factor, self.min_insync_replicas
        if rf is not None and isr is not None and isr > rf:
            raise ValueError(f"min_insync_replicas ({isr}) cannot exceed replication_factor ({rf})")
        if list(self.retry_delays_ms) != sorted(set(self.retry_delays_ms)):
            raise ValueError("retry_delays_ms must be strictly increasing")
        for delay in self.retry_delays_ms:
            format_delay(delay)

    def replication(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) for a cluster of ``brokers`` brokers.

        With three copies and two in sync, a write acknowledged by acks=all survives the loss
        of any one broker, and writes go on while one broker is down. A set value wins; a
        replication factor above the cluster's size is refused by the broker when the topic
        is created, with a message that says so.
        """
        if brokers < 1:
            raise ValueError(f"a cluster has at least one broker, not {brokers}")
        factor = self.replication_factor or (3 if brokers >= 3 else 1)
        in_sync = self.min_insync_replicas or (2 if factor >= 3 else 1)
        return factor, min(in_sync, factor)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name, what it is for, and the configuration to create it with."""

    name: str
    role: TopicRole
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int | None  # None: kept forever (compacted topics)
    cleanup_policy: str  # "delete" or "compact"
    key: str  # what the record key holds
    value_schema: str  # the schema name documented in docs/topics.md
    description: str
    delay_ms: int | None = None  # retry tiers only
    extra_config: tuple[tuple[str, str], ...] = field(default=())

    def config(self) -> dict[str, str]:
        """Topic-level configs, ready for ``NewTopic(topic_configs=...)`` of an admin client."""
        config = {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        config.update(self.extra_config)
        return config


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every topic of one deployment. Build it with :meth:`build`."""

    prefix: str
    specs: tuple[TopicSpec, ...]

    @classmethod
    def build(cls, settings: CatalogueSettings | None = None, *, brokers: int = 1) -> Catalogue:
        """The catalogue for ``settings`` on a cluster of ``brokers`` brokers (which decides the
        default replication; names and roles do not depend on it)."""
        s = settings or CatalogueSettings()
        p = s.prefix
        replicas, in_sync = s.replication(brokers)

        def spec(
            name: str,
            role: TopicRole,
            retention: int | None,
            key: str,
            schema: str,
            description: str,
            *,
            delay_ms: int | None = None,
            extra_config: tuple[tuple[str, str], ...] = (),
        ) -> TopicSpec:
            # No retention means a compacted topic: the latest value per key is kept forever.
            return TopicSpec(
                check_topic_name(name),
                role,
                s.partitions,
                replicas,
                in_sync,
                retention,
                "compact" if retention is None else "delete",
                key,
                schema,
                description,
                delay_ms,
                extra_config,
            )

        ticket_key = "ticket id (UTF-8): all records of a ticket share a partition"
        specs = [
            spec(
                s.tickets_topic or f"{p}.tickets",
                TopicRole.INPUT,
                s.input_retention_ms,
                ticket_key,
                "zendesk-webhook | actionflows.event/1.0",
                "Ticket events: Zendesk webhooks or generic envelopes",
            ),
            spec(
                s.interactions_topic or f"{p}.interactions",
                TopicRole.INPUT,
                s.input_retention_ms,
                ticket_key,
                "actionflows.event/1.0",
                "Interaction events (calls, chats, emails) in the generic envelope",
            ),
            spec(
                f"{p}.step-outputs",
                TopicRole.STEP_OUTPUTS,
                s.output_retention_ms,
                ticket_key,
                "actionflows.step-output/1",
                "One record per executed step, inputs redacted",
            ),
            spec(
                f"{p}.run-results",
                TopicRole.RUN_RESULTS,
                s.output_retention_ms,
                ticket_key,
                "actionflows.run-result/1",
                "One record per finished flow run",
            ),
            spec(
                f"{p}.dead-letters",
                TopicRole.DEAD_LETTERS,
                s.dead_letter_retention_ms,
                "the original record's key, unchanged",
                "original payload bytes",
                "Original records that failed permanently; context in actionflows.errors.* headers",
            ),
        ]
        for delay in s.retry_delays_ms:
            specs.append(
                spec(
                    f"{p}.retry.{format_delay(delay)}",
                    TopicRole.RETRY,
                    max(s.input_retention_ms, 2 * delay),
                    "the original record's key, unchanged",
                    "original payload bytes",
                    f"Records to retry no earlier than {format_delay(delay)} after a transient failure",
                    delay_ms=delay,
                )
            )
        if s.ledger:
            # Compacted (the latest entry per step) and deleted after the dead letters' retention,
            # so a redrive still finds a run's completed steps and the topic does not grow forever.
            ledger = spec(
                f"{p}.ledger",
                TopicRole.LEDGER,
                s.dead_letter_retention_ms,
                "<run key>/<step id> (UTF-8)",
                "actionflows.ledger-entry/1",
                "Changelog of completed steps; a null value (tombstone) forgets an entry",
                extra_config=(("min.cleanable.dirty.ratio", "0.1"),),
            )
            specs.append(replace(ledger, cleanup_policy="compact,delete"))
        # ``actionflows dlq redrive`` marks each letter it redrove, so a second redrive skips it.
        markers = spec(
            f"{p}.dlq-redriven",
            TopicRole.REDRIVE_MARKERS,
            None,
            "the dead letter's <partition>:<offset> (UTF-8)",
            "actionflows.redrive-marker/1",
            "Which dead letters were redriven, by which redrive",
        )
        specs.append(replace(markers, partitions=1))
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(
                f"topic names collide: {sorted(n for n in names if names.count(n) > 1)}"
            )
        return cls(prefix=p, specs=tuple(specs))

    def all(self) -> tuple[TopicSpec, ...]:
        return self.specs

    def by_role(self, role: TopicRole) -> tuple[TopicSpec, ...]:
        return tuple(spec for spec in self.specs if spec.role is role)

    def one(self, role: TopicRole) -> TopicSpec:
        """The single topic of a role that has exactly one (step outputs, dead letters, …)."""
        specs = self.by_role(role)
        if len(specs) != 1:
            raise KeyError(f"{len(specs)} {role} topics in this catalogue, expected one")
        return specs[0]

    def get(self, name: str) -> TopicSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def inputs(self) -> tuple[TopicSpec, ...]:
        return self.by_role(TopicRole.INPUT)

    @property
    def retry_tiers(self) -> tuple[TopicSpec, ...]:
        """Retry topics, shortest delay first."""
        return tuple(sorted(self.by_role(TopicRole.RETRY), key=lambda spec: spec.delay_ms or 0))

    def retry_tier_for(self, retry_number: int) -> TopicSpec:
        """The tier for the n-th delayed retry (1-based); later retries stay on the last tier."""
        tiers = self.retry_tiers
        if not tiers:
            raise KeyError("this catalogue has no retry tiers")
        if retry_number < 1:
            raise ValueError(f"retry numbers start at 1, got {retry_number}")
        return tiers[min(retry_number, len(tiers)) - 1]
