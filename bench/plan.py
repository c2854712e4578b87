"""What a benchmark run measures: the full plan (``make bench``) and the quick one (smoke runs).

Every figure is the median of ``runs`` runs, each of at least ``min_events`` events over at least
``min_seconds`` seconds: a run that finishes sooner is thrown away and the backlog grown to what
the measured rate needs, for that run and the ones after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FLOWS = ("create-lead", "find-else-create")

# The worker's producer against others, on create-lead at 0 ms: name -> faust settings changed.
PRODUCER_VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "faust's defaults: no compression, no linger, 16 KB batches": {
            "producer_compression_type": None,
            "producer_linger": 0.0,
            "producer_max_batch_size": 16_384,
        },
        "zstd, 5 ms linger, 256 KB batches": {"producer_compression_type": "zstd"},
        "lz4, 5 ms linger, 256 KB batches": {"producer_compression_type": "lz4"},
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int
    min_events: int
    min_seconds: float
    latencies: tuple[
        float, ...
    ]  # emulator latencies of the main figures (with latency at half load)
    latency_sweep: tuple[float, ...]  # more latencies, throughput only, for the latency plot
    windows: tuple[int, ...]  # in-flight windows swept, besides the default
    window_latency: float  # the emulator latency the window is swept at
    rss_events: int  # the backlog of the peak-memory runs (0: none)
    naive_seconds: float  # the naive baseline stops after this long
    raw_records: int
    flows: tuple[str, ...] = FLOWS
    # Worker processes in one group, besides one, at the lowest latency (scaling out).
    processes: tuple[int, ...] = (2,)
    producer_variants: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {name: dict(v) for name, v in PRODUCER_VARIANTS.items()}
    )

    def all_latencies(self) -> list[float]:
        return sorted({*self.latencies, *self.latency_sweep, self.window_latency})


FULL = Plan(
    runs=3,
    min_events=20_000,
    min_seconds=10.0,
    latencies=(0.0, 50.0),
    latency_sweep=(10.0, 100.0),
    windows=(64, 256, 1024, 4096),
    window_latency=50.0,
    rss_events=100_000,
    naive_seconds=15.0,
    raw_records=50_000,
)

QUICK = Plan(
    runs=1,
    min_events=2_000,
    min_seconds=0.0,
    latencies=(0.0, 50.0),
    latency_sweep=(),
    windows=(64, 1024),
    window_latency=50.0,
    rss_events=0,
    naive_seconds=3.0,
    raw_records=10_000,
)
