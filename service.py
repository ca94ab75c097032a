"""BentoML services: PersonDetector and PersonEmbedder (each scaled on its own, with adaptive
batching) behind the ReID entry service that answers ``POST /compare``.

Only wiring lives here; the computing is in the ``reid`` package.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from pydantic import Field
from starlette.responses import JSONResponse

from reid.config import get_settings
from reid.errors import RequestError
from reid.guard import UploadGuard
from reid.schemas import CompareResponse

settings = get_settings()


@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "1Gi"},
    traffic={"timeout": 30, "max_concurrency": 64},
)
class PersonDetector:
    # Declared so that `bentoml build` packages the model with the service.
    model = bentoml.models.BentoModel(settings.detector_model)

    def __init__(self) -> None:
        from reid.runtime import load_detector
        from reid.store import stored_model

        self.detector = load_detector(stored_model(settings.detector_model), settings)

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.detector_max_batch_size,
        max_latency_ms=settings.detector_max_latency_ms,
    )
    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Per ``(H, W, 3)`` uint8 RGB image, an ``(N, 5)`` float32 array of
        ``x1, y1, x2, y2, confidence`` person boxes in that image's pixels."""
        return self.detector.detect(images)


@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "1Gi"},
    traffic={"timeout": 30, "max_concurrency": 64},
)
class PersonEmbedder:
    model = bentoml.models.BentoModel(settings.embedder_model)

    def __init__(self) -> None:
        from reid.runtime import load_embedder
        from reid.store import stored_model

        self.embedder = load_embedder(stored_model(settings.embedder_model), settings)

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
    detector = bentoml.depends(PersonDetector)
    embedder = bentoml.depends(PersonEmbedder)

    def __init__(self) -> None:
        from reid.pipeline import PersonRules
        from reid.runtime import default_threshold
        from reid.schemas import ModelTags
        from reid.store import stored_model

        detector_model = stored_model(settings.detector_model)
        embedder_model = stored_model(settings.embedder_model)
        self.default_threshold = default_threshold(embedder_model, settings)
        self.models = ModelTags(detector=str(detector_model.tag), embedder=str(embedder_model.tag))
        self.rules = PersonRules.from_settings(settings)

    @bentoml.api(route="/compare")
    async def compare(
        self,
        image1: Annotated[Path, Field(description="JPEG or PNG image.")],
        image2: Annotated[Path, Field(description="JPEG or PNG image.")],
        threshold: Annotated[
            float | None,
            Field(ge=0.0, le=1.0, description="Similarity a match needs; default: the embedder's calibrated value."),
        ] = None,
    ) -> CompareResponse:
        """Find the persons in both images and say which of them are the same people."""
        from reid.pipeline import compare_images

        try:
            first, second = await asyncio.gather(
                *(
                    asyncio.to_thread(self._decode, path, field)
                    for path, field in ((image1, "image1"), (image2, "image2"))
                )
            )
        except RequestError as error:
            return JSONResponse(error.to_json(), status_code=error.status)
        return await compare_images(
            first,
            second,
            detect=self.detector.to_async.detect,
            embed=self.embedder.to_async.embed,
            rules=self.rules,
            threshold=self.default_threshold if threshold is None else threshold,
            models=self.models,
        )

    @staticmethod
    def _decode(path: Path, field: str) -> np.ndarray:
        from reid.images import decode_image

        return decode_image(
            path.read_bytes(), field=field, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )


ReID.add_asgi_middleware(
    UploadGuard,
    paths=("/compare",),
    file_fields=("image1", "image2"),
    text_fields=("threshold",),
    max_bytes=settings.max_request_bytes,
)
