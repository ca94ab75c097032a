"""Prometheus metrics of the entry service, beyond BentoML's own (served on ``/metrics``).

| metric | type | labels | what |
|---|---|---|---|
| ``reid_persons_per_image`` | histogram | | persons found per uploaded image |
| ``reid_match_similarity`` | histogram | | cosine similarity of every returned match |
| ``reid_stage_seconds`` | histogram | ``stage``: decode, detect, embed, match | time per request in each stage |
| ``reid_rejected_requests_total`` | counter | ``reason`` | requests refused, by the reason in ``reid.errors`` |
| ``reid_upload_bytes_held`` | gauge | | bytes of the upload-memory budget held now (0 at rest) |
| ``reid_requests_in_flight`` | gauge | | requests the entry is working on now |
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import bentoml

PERSONS_PER_IMAGE = bentoml.metrics.Histogram(
    name="reid_persons_per_image",
    documentation="Persons found per uploaded image.",
    buckets=(0, 1, 2, 3, 5, 10, 20, 30, 50, 100, float("inf")),
)
MATCH_SIMILARITY = bentoml.metrics.Histogram(
    name="reid_match_similarity",
    documentation="Cosine similarity of every returned match.",
    buckets=tuple(i / 10 for i in range(11)) + (float("inf"),),
)
STAGE_SECONDS = bentoml.metrics.Histogram(
    name="reid_stage_seconds",
    documentation="Time per request in each stage of /compare.",
    labelnames=["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf")),
)
REJECTED = bentoml.metrics.Counter(
    name="reid_rejected_requests_total",
    documentation="Requests refused, by reason.",
    labelnames=["reason"],
)

# Live processes only, summed: what the entry holds now.
UPLOAD_BYTES_HELD = bentoml.metrics.Gauge(
    name="reid_upload_bytes_held",
    documentation="Bytes of the upload-memory budget held now.",
    multiprocess_mode="livesum",
)
IN_FLIGHT = bentoml.metrics.Gauge(
    name="reid_requests_in_flight",
    documentation="Requests the entry is working on now.",
    multiprocess_mode="livesum",
)


def observe_load(bytes_held: int, in_flight: int) -> None:
    """The guard's load, as gauges."""
    UPLOAD_BYTES_HELD.set(bytes_held)
    IN_FLIGHT.set(in_flight)


@contextmanager
def stage(name: str):
    """Time the block into ``reid_stage_seconds{stage=name}``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage=name).observe(time.perf_counter() - started)


def timed(call, name: str):
    """An async callable whose every call is timed as stage ``name``."""

    async def wrapped(items):
        with stage(name):
            return await call(items)

    return wrapped


def reject(reason: str) -> None:
    """Count a refused request under its reason."""
    REJECTED.labels(reason=reason).inc()
