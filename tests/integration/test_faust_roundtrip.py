"""The foundation's proof: a faust app from ``agents`` runs against the real broker."""

from __future__ import annotations

import asyncio

from agents.app import create_app
from agents.settings import WorkerSettings
from tests.kafkatools import create_topics, produce, read


async def test_faust_app_consumes_one_topic_and_produces_to_another(
    kafka: str, unique: str
) -> None:
    """Every record sent to the input topic comes out, transformed, on the output topic."""
    source, sink = f"in-{unique}", f"out-{unique}"
    await create_topics(kafka, [source, sink])
    app = create_app(WorkerSettings(bootstrap_servers=kafka, app_id=f"roundtrip-{unique}"))
    app.conf.loop = asyncio.get_running_loop()
    source_topic = app.topic(source, key_type=bytes, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(sink, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(source_topic)
    async def upper(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await sink_topic.send(key=event.key, value=event.value.upper())

    await produce(kafka, source, [(b"k%d" % i, b"hello %d" % i) for i in range(10)])
    await app.start()
    try:
        records = await read(kafka, sink, 10)
    finally:
        await app.stop()
    assert sorted(r.value for r in records) == sorted(b"HELLO %d" % i for i in range(10))
    assert {r.key for r in records} == {b"k%d" % i for i in range(10)}
