"""Builds the faust application from settings. No agents here: :mod:`agents.worker` adds them."""

from __future__ import annotations

import faust

from agents.settings import WorkerSettings


def create_app(settings: WorkerSettings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        # Outcomes leave in batches of up to 256 KB per partition, gathered for up to 5 ms, and
        # zstd-compressed (cramjam): from ~20 records a batch it costs less CPU than aiokafka's
        # lz4 and halves the bytes again (docs/benchmarks.md, "Producer settings").
        producer_compression_type="zstd",
        producer_linger=0.005,
        producer_max_batch_size=262_144,
        producer_acks=-1,
        # Offsets are committed on a timer after the producer is flushed (faust's consumer),
        # which is what makes "commit only after the outputs are durable" hold.
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # Acknowledgement is manual and only after a batch's outcomes are durable, so stopping
        # need not wait for unacknowledged events: they are simply delivered again. (Waiting
        # would hang on a batch abandoned during shutdown, which is never acknowledged.)
        stream_wait_empty=False,
        **settings.extra,
    )
