"""The application assembled: the compare pipeline of the settings over the stored models.

The BentoML entry service builds its :class:`ReIDPipeline` with :func:`build_pipeline` over the
model services; :class:`LocalReID` builds the same pipeline over the networks in this process
(tests, evaluation, the command line). The models themselves are opened by
:class:`reid.models.loading.StoredModels`.
"""

from __future__ import annotations

import numpy as np

from reid.config import Settings
from reid.core.pipeline import DetectFn, EmbedFn, PersonRules, ReIDPipeline
from reid.models.loading import StoredModels
from reid.schemas import CompareResponse, GroupResponse


def person_rules(settings: Settings, models: StoredModels) -> PersonRules:
    """The person rules of the settings for these models."""
    return PersonRules(
        detector_input=models.detector_spec.input_size,
        tile_zoom=settings.tile_zoom,
        containment=settings.containment,
        # A partial view is a box its holder would be matched with.
        duplicate_similarity=models.threshold(settings),
        min_person_height=settings.min_person_height,
        min_person_aspect=settings.min_person_aspect,
        box_padding=settings.box_padding,
        max_persons=settings.max_persons,
    )


def build_pipeline(settings: Settings, models: StoredModels, detect: DetectFn, embed: EmbedFn) -> ReIDPipeline:
    """The compare pipeline of the settings over the given detector and embedder calls."""
    return ReIDPipeline(
        detect=detect,
        embed=embed,
        rules=person_rules(settings, models),
        threshold=models.threshold(settings),
        models=models.tags,
    )


class LocalReID:
    """``/compare`` in this process, with the models of the local BentoML store."""

    def __init__(self, settings: Settings) -> None:
        models = StoredModels.open(settings)
        self.settings = settings
        self.detector = models.load_detector(settings)
        self.embedder = models.load_embedder(settings)
        self.pipeline = build_pipeline(settings, models, self.detect, self.embed)

    async def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """The detector, as the pipeline calls it."""
        return self.detector.detect(images)

    async def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """The embedder, as the pipeline calls it."""
        return self.embedder.embed(crops)

    async def compare(self, image1: np.ndarray, image2: np.ndarray, threshold: float | None = None) -> CompareResponse:
        """The ``/compare`` answer for two ``(H, W, 3)`` uint8 RGB images."""
        return await self.pipeline.compare(image1, image2, threshold)

    async def group(self, images: list[np.ndarray], threshold: float | None = None) -> GroupResponse:
        """The ``/group`` answer for ``(H, W, 3)`` uint8 RGB images."""
        return await self.pipeline.group(images, threshold)
