"""Synthetic calls that bring the services to speed before the first real request."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np

from reid.core.images import decode_image
from reid.core.pipeline import ReIDPipeline


def warm_up_inputs(seed: int = 0) -> tuple[bytes, list[np.ndarray]]:
    """A 1080p JPEG and a typical request's worth of person-sized crops, both noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    sizes = [(int(rng.integers(40, 300)), int(rng.integers(20, 120))) for _ in range(40)]
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    return jpeg, crops


async def warm_up(pipeline: ReIDPipeline, training_calls: int, rounds: int = 3) -> None:
    """Run the compare path end to end (noise holds no persons, so crops are embedded apart),
    then ``training_calls`` (``REID_WARMUP_CALLS``) small calls of each model service, three at a time.

    Each model service's adaptive batcher first trains its latency model on about 35 calls,
    dispatching one to three at a time; until then a burst of real requests queues behind it
    and can pass the queue deadline (503). The small calls finish that training here."""
    jpeg, crops = warm_up_inputs()
    image = await asyncio.to_thread(decode_image, jpeg, field="warm-up", max_bytes=len(jpeg), max_pixels=1 << 22)
    for _ in range(rounds):
        await pipeline.compare(image, image)
        await pipeline.embed(crops)
    small = image[:240, :320]
    # Three at a time: training batches are of one to three calls, and each call in flight at
    # once is a pooled connection that goes stale together with the others when left idle.
    for _ in range(training_calls // 3):
        await asyncio.gather(*(pipeline.detect([small]) for _ in range(3)))
        await asyncio.gather(*(pipeline.embed(crops[:1]) for _ in range(3)))
