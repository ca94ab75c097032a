"""Stored models made ready to run.

:class:`StoredModels` opens (and verifies) the stored detector and embedder once; the BentoML
model services load their networks from it, and :mod:`reid.assembly` builds the compare pipeline
over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid.config import Settings
from reid.models.detection import Detector, DetectorOptions, open_detector
from reid.models.embedding import Embedder, EmbedderOptions
from reid.models.specs import DetectorSpec, EmbedderSpec, needs_torch_extra
from reid.models.store import open_stored, stored_model
from reid.schemas import ModelTags


@dataclass(frozen=True)
class StoredModels:
    """The detector and embedder of the settings, their files checked against their sha256."""

    detector_folder: Path
    detector_spec: DetectorSpec
    embedder_folder: Path
    embedder_spec: EmbedderSpec
    tags: ModelTags

    @classmethod
    def open(cls, settings: Settings, *, detector: bool = True, embedder: bool = True) -> StoredModels:
        """Verify the stored models (only those asked for: each model service checks its own)."""
        detector_model = stored_model(settings.detector_model)
        embedder_model = stored_model(settings.embedder_model)
        detector_folder, detector_spec = open_stored(detector_model, DetectorSpec, verify=detector)
        embedder_folder, embedder_spec = open_stored(embedder_model, EmbedderSpec, verify=embedder)
        tags = ModelTags(detector=str(detector_model.tag), embedder=str(embedder_model.tag))
        return cls(detector_folder, detector_spec, embedder_folder, embedder_spec, tags)

    @property
    def needs_torch_extra(self) -> bool:
        """Whether a stored network (the embedder, the detector or its large-person twin) runs on
        a backend of the torch extra."""
        backends = [self.embedder_spec.backend, self.detector_spec.backend]
        if self.detector_spec.large_persons is not None:
            backends.append(self.detector_spec.large_persons.backend)
        return any(needs_torch_extra(backend) for backend in backends)

    def threshold(self, settings: Settings) -> float:
        """The configured match threshold, else the embedder's calibrated one."""
        return self.embedder_spec.threshold if settings.threshold is None else settings.threshold

    def load_detector(self, settings: Settings) -> Detector:
        """The detector network, warmed up."""
        spec = self.detector_spec
        options = DetectorOptions(
            confidence=spec.confidence if settings.confidence is None else settings.confidence,
            nms_iou=settings.nms_iou,
            max_detections=settings.max_detections,
            min_box_side=settings.min_box_side,
            device=settings.device,
        )
        detector = open_detector(self.detector_folder, spec, options)
        detector.detect([np.zeros((spec.input_height, spec.input_width, 3), np.uint8)])
        return detector

    def load_embedder(self, settings: Settings) -> Embedder:
        """The embedder network, warmed up."""
        options = EmbedderOptions(threads=settings.embedder_threads, device=settings.device, flip=settings.embed_flip)
        embedder = Embedder(self.embedder_folder, self.embedder_spec, options)
        size = self.embedder_spec.preprocess
        embedder.embed([np.zeros((size.height, size.width, 3), np.uint8)] * 2)
        return embedder
