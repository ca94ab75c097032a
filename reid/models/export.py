"""torchreid networks exported to ONNX or OpenVINO IR, checked against torchreid's own output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.models.embedding import EmbedderSpec, load_torchreid_state, preprocess
from reid.models.specs import require_backend

MAX_RELATIVE_ERROR = 1e-4


class ExportMismatch(RuntimeError):
    """An export whose output differs from torchreid's beyond the tolerance."""


def check_crops(count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 RGB crops of assorted sizes, for checking an export."""
    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(16, 400)), int(rng.integers(8, 200))) for _ in range(count)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def relative_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Largest row-wise ``|a - b| / |a|`` (L2) between two ``(N, D)`` arrays."""
    return float((np.linalg.norm(reference - candidate, axis=1) / np.linalg.norm(reference, axis=1)).max())


def export_torchreid(weights: Path, spec: EmbedderSpec, backend: str, folder: Path) -> tuple[EmbedderSpec, float]:
    """Export ``weights`` (a torchreid ``.pth``) to ``folder`` as ONNX or OpenVINO IR.

    Returns the spec of the export and its measured relative error against torchreid on
    :func:`check_crops`; raises :class:`ExportMismatch` over ``MAX_RELATIVE_ERROR``.
    """
    require_backend("torchreid", weights.name)
    import torch

    from reid.models.embedding import Embedder

    network = load_torchreid_state(weights, spec.architecture)
    example = torch.from_numpy(preprocess(check_crops(), spec.preprocess))
    with torch.inference_mode():
        reference = network(example).numpy()
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "onnx":
        target = folder / f"{weights.stem}.onnx"
        torch.onnx.export(
            network,
            (example,),
            str(target),
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    elif backend == "openvino":
        import openvino

        target = folder / f"{weights.stem}.xml"
        converted = openvino.convert_model(network, example_input=example)
        converted.reshape({converted.inputs[0]: openvino.PartialShape([-1, *example.shape[1:]])})
        openvino.save_model(converted, str(target), compress_to_fp16=False)
    else:
        raise ValueError(f"cannot export to {backend!r}; choose onnx or openvino")
    exported = spec.model_copy(update={"backend": backend, "weights": target.name})
    runner = Embedder(folder, exported)
    error = relative_error(reference, runner.network(example.numpy()))
    if error > MAX_RELATIVE_ERROR:
        raise ExportMismatch(f"{target}: relative error {error:.2e} against torchreid, over {MAX_RELATIVE_ERROR:.0e}")
    return exported, error
