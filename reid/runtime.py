"""Stored models made ready to run, and the whole compare pipeline in one process.

The BentoML services load their models through :func:`load_detector` and
:func:`load_embedder`; :class:`LocalReID` runs the same pipeline without a server (tests,
evaluation, the command line).
"""

from __future__ import annotations

import numpy as np

from reid.config import Settings
from reid.detection import YoloDetector
from reid.embedding import Embedder, Runtime
from reid.pipeline import PairAnalysis, PersonRules, analyse_pair, build_response
from reid.schemas import CompareResponse, ModelTags
from reid.store import open_detector, open_embedder, stored_model


def load_detector(model, settings: Settings) -> YoloDetector:
    """A warmed-up detector from a stored model (``bentoml.Model``)."""
    folder, spec = open_detector(model)
    detector = YoloDetector(
        folder / spec.weights,
        confidence=settings.confidence,
        nms_iou=settings.nms_iou,
        max_detections=settings.max_detections,
        min_box_side=settings.min_box_side,
        image_size=spec.image_size,
        # Exports (OpenVINO, ONNX) run on the CPU; a .pt may run on a GPU.
        device=settings.device if spec.backend == "pytorch" else "cpu",
    )
    detector.detect([np.zeros((spec.image_size, spec.image_size, 3), np.uint8)])
    return detector


def load_embedder(model, settings: Settings) -> Embedder:
    """A warmed-up embedder from a stored model (``bentoml.Model``)."""
    folder, spec = open_embedder(model)
    runtime = Runtime(
        threads=settings.embedder_threads, device=settings.device if spec.backend == "torchreid" else "cpu"
    )
    embedder = Embedder(folder, spec, runtime=runtime, flip=settings.embed_flip)
    embedder.embed([np.zeros((spec.preprocess.height, spec.preprocess.width, 3), np.uint8)] * 2)
    return embedder


def default_threshold(embedder_model, settings: Settings) -> float:
    """The configured threshold, else the embedder's calibrated one."""
    if settings.threshold is not None:
        return settings.threshold
    return open_embedder(embedder_model)[1].threshold


class LocalReID:
    """``/compare`` in this process, with the models of the local BentoML store."""

    def __init__(self, settings: Settings) -> None:
        detector_model = stored_model(settings.detector_model)
        embedder_model = stored_model(settings.embedder_model)
        self.settings = settings
        self.rules = PersonRules.from_settings(settings)
        self.detector = load_detector(detector_model, settings)
        self.embedder = load_embedder(embedder_model, settings)
        self.threshold = default_threshold(embedder_model, settings)
        self.models = ModelTags(detector=str(detector_model.tag), embedder=str(embedder_model.tag))

    async def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return self.detector.detect(images)

    async def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.embedder.embed(crops)

    async def analyse(self, image1: np.ndarray, image2: np.ndarray) -> PairAnalysis:
        return await analyse_pair(image1, image2, detect=self.detect, embed=self.embed, rules=self.rules)

    async def compare(self, image1: np.ndarray, image2: np.ndarray, threshold: float | None = None) -> CompareResponse:
        analysis = await self.analyse(image1, image2)
        return build_response(analysis, self.threshold if threshold is None else threshold, self.models)
