"""What compressing the worker's records costs and saves: aiokafka's own codecs on batches of
step-output records shaped like the create-lead flow's, each with its own ids and names.

In process, no Kafka: the CPU per record and the size ratio of one producer batch, for the
batch sizes the worker's producer makes (a few records per partition when idle, hundreds under
load).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka.codec import gzip_encode, lz4_encode, zstd_encode

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lz4_encode,
    "zstd": zstd_encode,
    "gzip": gzip_encode,
}


@dataclass(frozen=True, slots=True)
class CodecResult:
    codec: str
    records: int  # records per batch
    us_per_record: float
    ratio: float  # uncompressed / compressed bytes


def _record(i: int) -> bytes:
    return orjson.dumps(
        {
            "schema": "actionflows.step-output/1",
            "flow": "bench-create-lead",
            "flow_version": 1,
            "run_id": f"run1-{i * 7919:026d}",
            "event_id": f"bench-5f3a9c1e-{i}",
            "ticket_id": f"B{i % 10_000}",
            "step": "create_lead",
            "action": "salesforce.create_record",
            "object": "lead",
            "inputs": {"name": f"Bench Person{i}", "description": f"Ticket B{i}: Benchmark"},
            "outputs": {"id": f"00Q{i:012d}AAA"},
            "status": "succeeded",
            "attempt": 1,
            "duration_ms": 12.345 + i % 97,
            "salesforce_id": f"00Q{i:012d}AAA",
            "error": None,
            "idempotency_key": f"af1-{i * 104729:026d}",
            "at": f"2026-01-01T00:{i % 60:02d}:{i % 59:02d}Z",
        }
    )


def measure(batch_sizes: tuple[int, ...] = (5, 50, 300), seconds: float = 0.3) -> list[CodecResult]:
    results = []
    for size in batch_sizes:
        batch = b"".join(_record(i) for i in range(size))
        for name, encode in CODECS.items():
            started = time.perf_counter()
            rounds = 0
            while time.perf_counter() - started < seconds:
                compressed = encode(batch)
                rounds += 1
            elapsed = (time.perf_counter() - started) / rounds
            results.append(
                CodecResult(name, size, elapsed / size * 1e6, len(batch) / len(compressed))
            )
    return results
