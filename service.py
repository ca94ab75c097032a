"""BentoML services: PersonDetector and PersonEmbedder (each scaled on its own, with adaptive
batching) behind the ReID entry service that answers ``POST /compare``, ``POST /group`` and the
gallery's routes (``/gallery/...``).

Only wiring lives here; the computing is in the ``reid`` package.
"""

from __future__ import annotations

import asyncio
import gc
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np

from reid.config import get_settings
from reid.private import bound_batch_wait, document_apis_beside_mounts, lead_the_document_with, serve_entry_behind
from reid.schemas import CompareResponse, GalleryEntry, GroupResponse, SearchResponse
from reid.serving.forms import upload_forms
from reid.serving.gallery_api import gallery_app
from reid.serving.memory import tune_malloc
from reid.serving.ui import ui_app

settings = get_settings()
tune_malloc()
bound_batch_wait(settings.batch_max_wait_ms / 1000)

# The APIs' fields, as their forms declare them (the front door checks bodies against the same).
FORMS = upload_forms(settings)
Image = Annotated[Path, FORMS.pair.field_info("image1")]
Images = Annotated[list[Path], FORMS.group.field_info("images")]
Threshold = Annotated[float | None, FORMS.pair.field_info("threshold")]
TopK = Annotated[int | None, FORMS.search.field_info("top_k")]
# Read as the front door read them (BentoML would read a label "1e3" as 1000.0): typed Any here.
Bbox = Annotated[Any, FORMS.enrol.field_info("bbox")]
Label = Annotated[Any, FORMS.enrol.field_info("label")]
Metadata = Annotated[Any, FORMS.enrol.field_info("metadata")]
Source = Annotated[Any, FORMS.enrol.field_info("source")]
JPEG = Annotated[Path, bentoml.validators.ContentType("image/jpeg")]


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


# The entry's memory: about 250 MiB at rest, plus the bodies it holds (REID_UPLOAD_MEMORY_BYTES)
# and the images it decodes (REID_DECODE_MEMORY_BYTES) with their copies on the way to the
# detector; its peak under the heaviest loads its limits let in is in docs/robustness.md.
@bentoml.service(
    workers=1,
    resources={"cpu": "1", "memory": "1536Mi"},
    traffic={"timeout": 60, "max_concurrency": 32},
)
# The gallery's list, get, edit and deletes: routes that @bentoml.api (POST only) cannot express.
@bentoml.asgi_app(gallery_app(bentoml.get_current_service, FORMS.view), path="/gallery")
# The web page (/ui/): static files, one route each, so that the guard knows each path; mounted
# at the root only for /ui to redirect to /ui/ (BentoML's mount of a Starlette app takes only its routes).
@bentoml.asgi_app(ui_app(), path="/")
class ReID:
    """The entry: ``POST /compare``, ``/group``, their pictures and the gallery, composing the two
    model services."""

    detector = bentoml.depends(PersonDetector)
    embedder = bentoml.depends(PersonEmbedder)

    def __init__(self) -> None:
        from reid.assembly import build_pipeline
        from reid.gallery.store import Gallery
        from reid.models.loading import StoredModels
        from reid.serving.entry import UploadHandler
        from reid.serving.gallery import GalleryHandler
        from reid.serving.metrics import timed
        from reid.serving.remote import guarded
        from reid.serving.uploads import private_upload_folder

        private_upload_folder()

        # The dependency clients exist only once the service is up: look them up per call.
        detect = timed(guarded(lambda images: self.detector.to_async.detect(images), "detector"), "detect")
        embed = timed(guarded(lambda crops: self.embedder.to_async.embed(crops), "embedder"), "embed")
        models = StoredModels.open(settings, detector=False, embedder=False)
        self.pipeline = build_pipeline(settings, models, detect, embed)
        self.handler = UploadHandler(settings, self.pipeline)
        # Opened here, so that a missing or corrupt store stops the start with its name.
        retention_s = None if settings.gallery_retention_days is None else settings.gallery_retention_days * 86400
        self.gallery = Gallery(settings.gallery_uri, models.tags.embedder, retention_s)
        self.gallery_handler = GalleryHandler(settings, self.pipeline, self.gallery)
        self.warm = asyncio.Event()
        self.warming = asyncio.Lock()

    async def __is_ready__(self) -> bool:
        """Ready once both model services have answered a few warm-up calls, so that the first
        request is as fast as the hundredth."""
        from reid.serving.warmup import warm_up

        async with self.warming:
            if not self.warm.is_set():
                await warm_up(self.pipeline, training_calls=settings.warmup_calls)
                # What exists now lives as long as the process: keep it out of the cycle
                # collections that run after each request.
                gc.freeze()
                self.warm.set()
        return True

    @bentoml.api(route="/compare")
    async def compare(self, image1: Image, image2: Image, threshold: Threshold = None) -> CompareResponse:
        """Find the persons in both images and say which of them are the same people."""
        uploads = [("image1", image1), ("image2", image2)]
        return await self.handler.respond(uploads, lambda images: self.handler.compare(images, threshold))

    @bentoml.api(route="/compare/visualize")
    async def visualize(self, image1: Image, image2: Image, threshold: Threshold = None) -> JPEG:
        """The same comparison as a JPEG: both images side by side, each matched pair in its own
        colour joined by a line with its similarity, unmatched persons in grey."""
        from reid.core.visualize import render

        async def picture(images: list[np.ndarray]):
            answer = await self.handler.compare(images, threshold)
            return await self.handler.picture(lambda: render(images[0], images[1], answer))

        return await self.handler.respond([("image1", image1), ("image2", image2)], picture)

    @bentoml.api(route="/group")
    async def group(self, images: Images, threshold: Threshold = None) -> GroupResponse:
        """Find the persons in every image and group them into identities: persons of different
        images found to be one person, never two of the same image."""
        uploads = [("images", path) for path in images]
        return await self.handler.respond(uploads, lambda decoded: self.handler.group(decoded, threshold))

    @bentoml.api(route="/group/visualize")
    async def group_visualize(self, images: Images, threshold: Threshold = None) -> JPEG:
        """The same grouping as a JPEG: the images in a grid, each identity in its own colour
        with its number on each of its boxes, persons not matchable in grey."""
        from reid.core.visualize import render_group

        async def picture(decoded: list[np.ndarray]):
            answer = await self.handler.group(decoded, threshold)
            return await self.handler.picture(lambda: render_group(decoded, answer))

        return await self.handler.respond([("images", path) for path in images], picture)

    @bentoml.api(route="/gallery/persons")
    async def enrol(
        self,
        image: Image,
        ctx: bentoml.Context,
        bbox: Bbox = None,
        label: Label = None,
        metadata: Metadata = None,
        source: Source = None,
    ) -> GalleryEntry:
        """Store a person in the gallery: the one in ``bbox``, or the image's only matchable
        person; with an optional label, a JSON object of metadata and the picture's source. A
        client that may retry sends an ``Idempotency-Key`` header: a retry then returns the
        person stored the first time. More views of a person: ``POST /gallery/persons/{id}/views``."""
        from reid.serving.gallery import write_key
        from reid.serving.http.forms import checked_form

        # The fields as the front door read them replace BentoML's reading (a label "1e3" is 1000.0 there).
        form = checked_form(ctx.request.scope)
        bbox, label, source = form.values.get("bbox"), form.values.get("label"), form.values.get("source")
        metadata = form.values.get("metadata") or {}
        data = await asyncio.to_thread(image.read_bytes)
        fields = [bbox, label, metadata, source]
        key = await asyncio.to_thread(write_key, form.headers.get(b"idempotency-key"), data, fields)
        answer = await self.handler.respond(
            [("image", data)],
            lambda images: self.gallery_handler.enrol(images[0], bbox, label, metadata, source, key),
        )
        # BentoML answers an API that takes ctx with ctx's status: a refusal keeps its own.
        ctx.response.status_code = getattr(answer, "status_code", HTTPStatus.OK)
        return answer

    @bentoml.api(route="/gallery/search")
    async def search(
        self,
        image: Image,
        top_k: TopK = None,
        threshold: Threshold = None,
    ) -> SearchResponse:
        """Every person of the image with its most similar gallery persons at or above the threshold."""
        return await self.handler.respond(
            [("image", image)], lambda images: self.gallery_handler.search(images[0], top_k, threshold)
        )


def entry_app(app, service):
    """The entry's ASGI app behind the request guard, once the settings agree with BentoML's
    traffic configuration of the service (a contradiction stops the start)."""
    from reid.config import check_against_traffic
    from reid.private import limit_header_time
    from reid.serving.entry import count_rejection
    from reid.serving.http.body import UploadLimits
    from reid.serving.http.guard import RequestGuard
    from reid.serving.http.routing import known_route, route_methods
    from reid.serving.metrics import observe_load

    check_against_traffic(settings, service.config.get("traffic") or {})
    limit_header_time(settings.header_timeout_s)
    return RequestGuard(
        app,
        forms=FORMS.by_path(),
        mounts=frozenset({"/gallery"}),
        limits=UploadLimits(
            max_bytes=settings.max_request_bytes,
            timeout_s=settings.upload_timeout_s,
            min_rate=settings.min_upload_rate,
            memory=settings.upload_memory_bytes,
        ),
        max_in_flight=settings.max_in_flight,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        known_path=known_route(app),
        methods=route_methods(app),
        on_reject=count_rejection,
        on_load=observe_load,
        keyed_paths=frozenset({"/metrics"} if settings.metrics_need_key else ()),
        cached_paths=frozenset({"/docs.json"}),
    )


serve_entry_behind(ReID, entry_app)
document_apis_beside_mounts(ReID)
lead_the_document_with(ReID, "**[The web page: compare, group and the gallery](ui/)**")
