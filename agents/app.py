"""Builds the faust application from settings. No agents here: :mod:`agents.worker` adds them."""

from __future__ import annotations

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from agents import loops
from agents.kafka_client import FETCH_MAX_WAIT_MS, faust_options
from agents.settings import WorkerSettings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, whose consumer waits FETCH_MAX_WAIT_MS for a fetch, not 1.5 s
    (agents/kafka_client.py says why)."""

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # faust passes a literal and has no setting for it; AIOKafkaConsumer.start hands this
        # to its Fetcher (tests/integration/test_fetch_wait.py checks that it arrives).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        # mode gives the thread asyncio's own loop whatever the worker runs on; on uvloop the
        # thread's fetches, heartbeats and commits run on uvloop too (agents/loops.py says why).
        thread = _ConsumerThread(
            self, loop=self.loop, thread_loop=loops.new_loop_like(self.loop), beacon=self.beacon
        )
        thread._close_thread_loop_on_stop = True  # mode closes only the loops it made
        return thread


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def create_app(settings: WorkerSettings) -> faust.App:
    settings.state_dir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(settings.state_dir / settings.app_id),  # not <cwd>/<app id>-data
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        topic_partitions=settings.topic_partitions,
        # Every topic comes from the catalogue (ensure_topics), with its replication. faust
        # would add one of its own, a leader-election topic, for on_leader tasks; there are
        # none. (Its replication factor, for any topic faust should ever make, is set from
        # the same settings when the service starts.)
        topic_disable_leader=True,
        # Outcomes leave in batches of up to 256 KB per partition, gathered for up to 5 ms
        # (producer_linger below), uncompressed unless ACTIONFLOWS_COMPRESSION says otherwise
        # (docs/benchmarks.md, "Producer settings").
        producer_compression_type=settings.compression,
        producer_max_batch_size=262_144,
        producer_acks=-1,
        # Kafka's and aiokafka's default (faust's own is 1,000,000): the broker's default
        # max.message.bytes then bounds outcomes, not the producer (see agents/publisher.py).
        producer_max_request_size=1_048_576,
        # Records are published as each one finishes, not in batches: a short linger lets the
        # producer gather them into few requests.
        producer_linger=0.005,
        # Offsets are committed on a timer after the producer is flushed (faust's consumer),
        # which is what makes "commit only after the outputs are durable" hold.
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # Acknowledgement is manual and only after a record's outcomes are durable, so stopping
        # need not wait for unacknowledged events: they are simply delivered again. (Waiting
        # would hang on a record abandoned during shutdown, which is never acknowledged.)
        stream_wait_empty=False,
        **faust_options(settings.security),  # TLS and SASL (KAFKA_SECURITY_PROTOCOL …)
        **settings.extra,
    )
    app.transport = _Transport(app.conf.broker_consumer, app)  # the shorter fetch wait
    return app
