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
from starlette.responses import JSONResponse

from reid.config import get_settings
from reid.errors import RequestError
from reid.guard import RequestGuard, optional_unit_interval
from reid.memory import MemoryReleaser, tune_malloc
from reid.schemas import CompareResponse

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
    # Declared so that `bentoml build` packages the model with the service.
    model = bentoml.models.BentoModel(settings.detector_model)

    def __init__(self) -> None:
        from reid.runtime import StoredModels

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
    model = bentoml.models.BentoModel(settings.embedder_model)

    def __init__(self) -> None:
        from reid.runtime import StoredModels

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
    detector = bentoml.depends(PersonDetector)
    embedder = bentoml.depends(PersonEmbedder)

    def __init__(self) -> None:
        from reid.logs import json_logger
        from reid.metrics import timed
        from reid.remote import guarded
        from reid.runtime import StoredModels, build_pipeline

        # The dependency clients exist only once the service is up: look them up per call.
        detect = timed(guarded(lambda images: self.detector.to_async.detect(images), "detector"), "detect")
        embed = timed(guarded(lambda crops: self.embedder.to_async.embed(crops), "embedder"), "embed")
        models = StoredModels.open(settings, detector=False, embedder=False)
        self.pipeline = build_pipeline(settings, models, detect, embed)
        self.log = json_logger()
        self.warm = asyncio.Event()
        self.warming = asyncio.Lock()

    async def __is_ready__(self) -> bool:
        """Ready once both model services have answered a few warm-up calls, so that the first
        request is as fast as the hundredth."""
        from reid.warmup import warm_up

        async with self.warming:
            if not self.warm.is_set():
                await warm_up(self.pipeline)
                # What exists now lives as long as the process: keep it out of the cycle
                # collections that each request's release_free_memory() runs.
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

        return await self._respond(image1, image2, threshold, as_json)

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

        from reid.visualize import encode_jpeg, render

        async def as_picture(images: list[np.ndarray], answer: CompareResponse) -> Response:
            picture = await asyncio.to_thread(lambda: encode_jpeg(render(*images, answer)))
            return Response(picture, media_type="image/jpeg")

        return await self._respond(image1, image2, threshold, as_picture)

    async def _respond(self, image1: Path, image2: Path, threshold: float | None, present):
        """``present(images, answer)`` of the comparison, or the refusal as a JSON error."""
        try:
            images, answer = await self._answer(image1, image2, threshold)
            return await present(images, answer)
        except RequestError as error:
            return refuse(error)
        finally:
            after_request()

    async def _answer(self, image1: Path, image2: Path, threshold: float | None):
        """Decode, detect, embed and match under the request timeout; metrics and a log line."""
        from reid.errors import TimedOut
        from reid.metrics import MATCH_SIMILARITY, PERSONS_PER_IMAGE, stage
        from reid.pipeline import build_response

        try:
            async with asyncio.timeout(settings.request_timeout_s):
                with stage("decode"):
                    images = await asyncio.gather(
                        asyncio.to_thread(self._decode, image1, "image1"),
                        asyncio.to_thread(self._decode, image2, "image2"),
                    )
                analysis = await self.pipeline.analyse(*images)
        except TimeoutError as error:
            raise TimedOut(f"no answer within {settings.request_timeout_s} s; retry") from error
        with stage("match"):
            pipeline = self.pipeline
            answer = build_response(analysis, pipeline.threshold if threshold is None else threshold, pipeline.models)
        for count in (answer.image1_person_count, answer.image2_person_count):
            PERSONS_PER_IMAGE.observe(count)
        for match in answer.matches:
            MATCH_SIMILARITY.observe(match.similarity)
        self.log.info(
            "compared",
            extra={
                "persons": [answer.image1_person_count, answer.image2_person_count],
                "matches": len(answer.matches),
                "threshold": answer.threshold,
            },
        )
        return images, answer

    @staticmethod
    def _decode(path: Path, field: str) -> np.ndarray:
        from reid.images import decode_upload

        return decode_upload(path.read_bytes(), field, settings)


release_free_memory = MemoryReleaser(interval=1.0)


def after_request() -> None:
    """A request's arrays, and a refused one's traceback, can sit in reference cycles until a
    full collection, megabytes each: collect them and hand the heap back, off the request's
    path and at most once a second (measured with scripts/soak.py)."""
    asyncio.get_running_loop().run_in_executor(None, release_free_memory)


def count_rejection(error: RequestError) -> None:
    from reid.logs import json_logger
    from reid.metrics import reject

    reject(error.reason)
    json_logger().info("rejected", extra={"reason": error.reason, "status": int(error.status), "error": str(error)})


def refuse(error: RequestError) -> JSONResponse:
    count_rejection(error)
    return JSONResponse(error.to_json(), status_code=error.status, headers=error.headers())


ReID.add_asgi_middleware(
    RequestGuard,
    paths=("/compare", "/compare/visualize"),
    file_fields=("image1", "image2"),
    text_fields={"threshold": optional_unit_interval},
    max_bytes=settings.max_request_bytes,
    max_in_flight=settings.max_in_flight,
    api_key=settings.api_key.get_secret_value() if settings.api_key else None,
    on_reject=count_rejection,
)
