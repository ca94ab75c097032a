"""Person crops to L2-normalised appearance embeddings.

One interface, several runtimes: the model's :class:`EmbedderSpec` (stored in its BentoML
metadata) names the backend, the weights file and the preprocessing the network was trained
with, so that the model file, not a flag, decides how it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid.core.matching import unit_rows
from reid.models.specs import EmbedderSpec, Preprocess, device_for, require_backend

# (N, 3, H, W) float32 network input -> (N, D) float32 raw features.
Network = Callable[[np.ndarray], np.ndarray]


def preprocess(crops: list[np.ndarray], spec: Preprocess) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB crops of any sizes to an ``(N, 3, H, W)`` float32 batch."""
    size = (spec.width, spec.height)
    resized = np.empty((len(crops), spec.height, spec.width, 3), dtype=np.uint8)
    for i, crop in enumerate(crops):
        # Area averaging when shrinking (no aliasing), bilinear when enlarging.
        shrinking = crop.shape[0] > spec.height or crop.shape[1] > spec.width
        cv2.resize(crop, size, dst=resized[i], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    channels = resized.transpose(0, 3, 1, 2)
    if spec.channels == "BGR":
        channels = channels[:, ::-1]
    batch = np.ascontiguousarray(channels, dtype=np.float32)
    batch -= (np.asarray(spec.mean, dtype=np.float32) / spec.scale)[:, None, None]
    batch *= (spec.scale / np.asarray(spec.std, dtype=np.float32))[:, None, None]
    return batch


# Batches are padded to a multiple of this: runtimes that keep compiled kernels per input shape
# (OpenVINO's CPU plugin) then see a few shapes, not one per crop count, and memory stays flat.
BATCH_QUANTUM = 8


def _pad_batch(batch: np.ndarray, quantum: int) -> np.ndarray:
    """``(N, C, H, W)`` padded with zero rows up to a multiple of ``quantum``."""
    missing = -len(batch) % quantum
    if not missing:
        return batch
    return np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), dtype=batch.dtype)])


@dataclass(frozen=True)
class EmbedderOptions:
    """What the service decides beyond the stored spec."""

    threads: int = 0  # CPU threads; 0: the runtime's default
    device: str = "cpu"  # "cpu", "cuda", "cuda:1"; backends that cannot use it run on the CPU
    flip: bool = False  # average each crop's embedding with its mirror image's
    chunk: int = 64  # most crops per network call


class Embedder:
    """Runs a stored embedder: ``embed(crops) -> (N, D)`` float32, rows of unit length."""

    def __init__(self, folder: Path, spec: EmbedderSpec, options: EmbedderOptions = EmbedderOptions()) -> None:
        if spec.backend not in _BACKENDS:
            raise ValueError(f"no embedder backend {spec.backend!r}; known: {', '.join(_BACKENDS)}")
        require_backend(spec.backend, spec.weights)
        self.spec = spec
        self.flip = options.flip
        self.chunk = options.chunk
        device = device_for(spec.backend, spec.weights, options.device)
        self.network = _BACKENDS[spec.backend](Path(folder) / spec.weights, spec, options.threads, device)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float32 unit embeddings of ``(h, w, 3)`` uint8 RGB person crops of any sizes."""
        if not crops:
            return np.zeros((0, self.spec.embedding_dim), dtype=np.float32)
        parts = []
        for start in range(0, len(crops), self.chunk):
            chunk = crops[start : start + self.chunk]
            batch = _pad_batch(preprocess(chunk, self.spec.preprocess), BATCH_QUANTUM)
            features = self.network(batch)
            if self.flip:
                features = features + self.network(np.ascontiguousarray(batch[..., ::-1]))
            parts.append(features[: len(chunk)])
        return unit_rows(np.concatenate(parts))


def load_torchreid_state(weights: Path, architecture: str):
    """Build a torchreid network and load a state dict (or a torchreid checkpoint) into it.

    Only the classifier may be missing (ReID weights are used as feature extractors).
    """
    import torch
    from torchreid.reid.models import build_model

    network = build_model(architecture, num_classes=1, pretrained=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("classifier.")]
    unexpected = [key for key in unexpected if not key.startswith("classifier.")]
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not hold {architecture} weights: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return network.eval()


def _torchreid(weights: Path, spec: EmbedderSpec, threads: int, device: str) -> Network:
    import torch

    if threads:
        torch.set_num_threads(threads)
    network = load_torchreid_state(weights, spec.architecture).to(device)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch).to(device)).cpu().numpy()

    return run


def _onnx(weights: Path, spec: EmbedderSpec, threads: int, device: str) -> Network:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: batch})[0]

    return run


def _openvino(weights: Path, spec: EmbedderSpec, threads: int, device: str) -> Network:
    import openvino

    core = openvino.Core()
    model = core.read_model(str(weights))
    # Some IRs (Intel's Open Model Zoo) are saved with batch 1; a dynamic batch runs them in one go.
    model.reshape({model.inputs[0]: openvino.PartialShape([-1, 3, spec.preprocess.height, spec.preprocess.width])})
    # Explicit: on CPUs with bf16 units OpenVINO would otherwise pick bf16 for every model, which
    # moves OSNet x0_25's embeddings by up to 1e-1 (measured) but Intel's FP16 models by under 1e-3.
    config: dict[str, object] = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": spec.precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(model, "CPU", config)
    requests = [
        compiled.create_infer_request() for _ in range(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    ]

    def run(batch: np.ndarray) -> np.ndarray:
        # Whole quanta per stream, run side by side (one core each): less CPU per crop than one
        # run spread over every core, in the same time.
        quanta = len(batch) // BATCH_QUANTUM
        bounds = np.linspace(0, quanta, min(len(requests), quanta) + 1).round().astype(int) * BATCH_QUANTUM
        running = list(zip(requests, bounds[:-1], bounds[1:]))
        for request, start, end in running:
            request.start_async({0: batch[start:end]})
        for request, _, _ in running:
            request.wait()
        return np.concatenate([request.get_output_tensor(0).data.copy() for request, _, _ in running])

    return run


_BACKENDS: dict[str, Callable[[Path, EmbedderSpec, int, str], Network]] = {
    "torchreid": _torchreid,
    "onnx": _onnx,
    "openvino": _openvino,
}
