"""INT8 post-training quantisation of an OpenVINO embedder with NNCF, checked like an export.

The quantised network is calibrated on person crops and then held to the original: on labelled
crops (``query/`` and ``gallery/``) its embeddings must stay close to the original's and its
retrieval accuracy must not drop by more than a set margin, or the import fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid.core.images import read_rgb
from reid.core.matching import cosine_similarity
from reid.evaluation.datasets import load_crop_set
from reid.evaluation.retrieval import retrieval_metrics
from reid.models.embedding import Embedder, preprocess
from reid.models.specs import EmbedderSpec

CALIBRATION_CROPS = 1000
# The quantised embeddings' mean cosine with the original's, and the mAP it may lose.
MIN_MEAN_COSINE = 0.97
MAX_MAP_DROP = 0.02


class QuantizationMismatch(RuntimeError):
    """A quantised network that strays too far from the original."""


@dataclass(frozen=True)
class QuantizationCheck:
    """How the quantised network compares with the original on labelled crops."""

    crops: int
    mean_cosine: float
    original_map: float
    quantized_map: float
    original_rank1: float
    quantized_rank1: float

    def describe(self) -> str:
        """The check in one line, for the import's output and the model's metadata."""
        return (
            f"on {self.crops} labelled crops: mean cosine {self.mean_cosine:.4f} with the original's embeddings,"
            f" mAP {self.original_map:.3f} -> {self.quantized_map:.3f}, rank-1 {self.original_rank1:.3f} ->"
            f" {self.quantized_rank1:.3f}"
        )


def quantize_embedder(
    weights: Path, spec: EmbedderSpec, crops_folder: Path, target: Path, seed: int = 0
) -> tuple[EmbedderSpec, QuantizationCheck]:
    """Quantise an OpenVINO IR embedder (``weights``, an ``.xml``) to INT8 into ``target``.

    Calibrates on up to ``CALIBRATION_CROPS`` crops of ``crops_folder`` (chosen at random with
    ``seed``), checks on all of them; raises :class:`QuantizationMismatch` beyond
    ``MIN_MEAN_COSINE`` or ``MAX_MAP_DROP``.
    """
    import nncf
    import openvino

    if spec.backend != "openvino" or weights.suffix != ".xml":
        raise ValueError(f"{weights}: INT8 quantisation takes an OpenVINO IR embedder (export a .pth first)")
    crop_set = load_crop_set(crops_folder)
    labelled = crop_set.query + crop_set.gallery
    if not crop_set.query or not crop_set.gallery:
        raise ValueError(f"{crops_folder}: no labelled crops in query/ and gallery/ to quantise on")
    images = [read_rgb(crop.path) for crop in labelled]
    picks = np.random.default_rng(seed).permutation(len(images))[:CALIBRATION_CROPS]

    core = openvino.Core()
    model = core.read_model(str(weights))
    model.reshape({model.inputs[0]: openvino.PartialShape([1, 3, spec.preprocess.height, spec.preprocess.width])})
    dataset = nncf.Dataset([images[i] for i in picks], lambda image: preprocess([image], spec.preprocess))
    # NNCF's default (mixed) preset: symmetric weights, asymmetric activations, for accuracy.
    quantized = nncf.quantize(model, dataset, subset_size=len(picks))
    target.mkdir(parents=True, exist_ok=True)
    name = f"{weights.stem}-int8.xml"
    openvino.save_model(quantized, str(target / name), compress_to_fp16=False)
    # What is left in floating point runs in f32: as fast here as bf16, and the same on every CPU.
    result = spec.model_copy(
        update={
            "weights": name,
            "precision": "f32",
            "quantized": f"int8 (NNCF, {len(picks)} crops of {crops_folder.name})",
        }
    )

    ids = np.array([crop.identity for crop in labelled])
    cams = np.array([crop.camera for crop in labelled])
    original = Embedder(weights.parent, spec).embed(images)
    candidate = Embedder(target, result).embed(images)
    check = _check(original, candidate, ids, cams, len(crop_set.query))
    if check.mean_cosine < MIN_MEAN_COSINE or check.original_map - check.quantized_map > MAX_MAP_DROP:
        raise QuantizationMismatch(f"{target / name} strays too far from {weights.name}: {check.describe()}")
    return result, check


def _check(original: np.ndarray, candidate: np.ndarray, ids, cams, queries: int) -> QuantizationCheck:
    q, g = slice(0, queries), slice(queries, None)
    before = retrieval_metrics(cosine_similarity(original[q], original[g]), ids[q], cams[q], ids[g], cams[g])
    after = retrieval_metrics(cosine_similarity(candidate[q], candidate[g]), ids[q], cams[q], ids[g], cams[g])
    return QuantizationCheck(
        crops=len(original),
        mean_cosine=float(np.mean(np.sum(original * candidate, axis=1))),
        original_map=before["mAP"],
        quantized_map=after["mAP"],
        original_rank1=before["rank1"],
        quantized_rank1=after["rank1"],
    )
