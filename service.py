"""BentoML services: PersonDetector and PersonEmbedder (each scaled on its own, with adaptive
batching) behind the ReID entry service that answers ``POST /compare``.

Only wiring lives here; the computing is in the ``reid`` package.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from pydantic import Field

from reid.config import get_settings
from reid.private import serve_entry_behind
from reid.schemas import CompareResponse
from reid.serving.guard import optional_unit_interval
from reid.serving.memory import tune_malloc

settings = get_settings()
tune_malloc()

Threshold = Annotated[
    float | None,
    Field(ge=0.0, le=1.0, description="Similarity a match needs; default: the embedder's calibrated value."),
]


@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "2Gi"},
    traffic={"timeout": 30, "max_concurrency": 64},
)
class PersonDetector:
    """Finds persons: ``detect(images)``, batched across requests."""

    # Declared so that `bentoml build` packages the model with the service.
    model = bentoml.models.BentoModel(settings.detector_model)

    def __init__(self) -> None:
        from reid.models.loading import StoredModels

        self.detector = StoredModels.open(settings, embedder=False).load_detector(settings)

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.detector_max_batch_size,
        max_latency_ms=settings.detector_max_latency_ms,
    )
    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Per ``(H, W, 3)`` uint8 RGB image, an ``(N, 5)`` float32 array of
        ``x1, y1, x2, y2, score`` person boxes in that image's pixels."""
        return self.detector.detect(images)


@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "1Gi"},
    traffic={"timeout": 30, "max_concurrency": 64},
)
class PersonEmbedder:
    """Embeds person crops: ``embed(crops)``, batched across requests."""

    model = bentoml.models.BentoModel(settings.embedder_model)

    def __init__(self) -> None:
        from reid.models.loading import StoredModels

        self.embedder = StoredModels.open(settings, detector=False).load_embedder(settings)

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.embedder_max_batch_size,
        max_latency_ms=settings.embedder_max_latency_ms,
    )
    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float32 L2-normalised embeddings of ``(h, w, 3)`` uint8 RGB person crops."""
        return self.embedder.embed(crops)


@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "1Gi"},
    traffic={"timeout": 60, "max_concurrency": 32},
)
class ReID:
    """The entry: ``POST /compare`` and ``/compare/visualize``, composing the two model services."""

    detector = bentoml.depends(PersonDetector)
    embedder = bentoml.depends(PersonEmbedder)

    def __init__(self) -> None:
        from reid.models.loading import StoredModels, build_pipeline
        from reid.serving.entry import CompareHandler
        from reid.serving.metrics import timed
        from reid.serving.remote import guarded

        # The dependency clients exist only once the service is up: look them up per call.
        detect = timed(guarded(lambda images: self.detector.to_async.detect(images), "detector"), "detect")
        embed = timed(guarded(lambda crops: self.embedder.to_async.embed(crops), "embedder"), "embed")
        models = StoredModels.open(settings, detector=False, embedder=False)
        self.pipeline = build_pipeline(settings, models, detect, embed)
        self.handler = CompareHandler(settings, self.pipeline)
        self.warm = asyncio.Event()
        self.warming = asyncio.Lock()

    async def __is_ready__(self) -> bool:
        """Ready once both model services have answered a few warm-up calls, so that the first
        request is as fast as the hundredth."""
        from reid.serving.warmup import warm_up

        async with self.warming:
            if not self.warm.is_set():
                await warm_up(self.pipeline)
                # What exists now lives as long as the process: keep it out of the cycle
                # collections that run after each request.
                gc.freeze()
                self.warm.set()
        return True

    @bentoml.api(route="/compare")
    async def compare(
        self,
        image1: Annotated[Path, Field(description="JPEG or PNG image.")],
        image2: Annotated[Path, Field(description="JPEG or PNG image.")],
        threshold: Threshold = None,
    ) -> CompareResponse:
        """Find the persons in both images and say which of them are the same people."""

        async def as_json(images: list[np.ndarray], answer: CompareResponse) -> CompareResponse:
            return answer

        return await self.handler.respond({"image1": image1, "image2": image2}, threshold, as_json)

    @bentoml.api(route="/compare/visualize")
    async def visualize(
        self,
        image1: Annotated[Path, Field(description="JPEG or PNG image.")],
        image2: Annotated[Path, Field(description="JPEG or PNG image.")],
        threshold: Threshold = None,
    ) -> Annotated[Path, bentoml.validators.ContentType("image/jpeg")]:
        """The same comparison as a JPEG: both images side by side, each matched pair in its own
        colour joined by a line with its similarity, unmatched persons in grey."""
        from starlette.responses import Response

        from reid.core.visualize import encode_jpeg, render

        async def as_picture(images: list[np.ndarray], answer: CompareResponse) -> Response:
            # Drawn under the request's timeout; the picture's size is bounded whatever the images.
            picture = await asyncio.to_thread(lambda: encode_jpeg(render(images[0], images[1], answer)))
            return Response(picture, media_type="image/jpeg")

        return await self.handler.respond({"image1": image1, "image2": image2}, threshold, as_picture)


def entry_app(app, service):
    """The entry's ASGI app behind the request guard, once the settings agree with BentoML's
    traffic configuration of the service (a contradiction stops the start)."""
    from reid.config import check_against_traffic
    from reid.core.images import read_upload_header
    from reid.private import limit_header_time
    from reid.serving.entry import count_rejection
    from reid.serving.guard import RequestGuard, UploadForm, UploadLimits, known_route

    check_against_traffic(settings, service.config.get("traffic") or {})
    limit_header_time(settings.header_timeout_s)
    form = UploadForm(
        file_fields=("image1", "image2"),
        text_fields={"threshold": optional_unit_interval},
        # Format, caps and decode work refused before BentoML parses the body again.
        check_file=lambda field, data: read_upload_header(data, field, settings),
    )
    return RequestGuard(
        app,
        forms={"/compare": form, "/compare/visualize": form},
        limits=UploadLimits(
            max_bytes=settings.max_request_bytes,
            timeout_s=settings.upload_timeout_s,
            min_rate=settings.min_upload_rate,
            memory=settings.upload_memory_bytes,
        ),
        max_in_flight=settings.max_in_flight,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        known_path=known_route(app),
        on_reject=count_rejection,
    )


serve_entry_behind(ReID, entry_app)
