"""How a stored model runs: the detector's and the embedder's specs, kept in the model's metadata.

The two are built alike: an architecture name, the backend (the runtime that executes the
weights file), the weights file inside the model's folder, what the network takes as input,
and the calibrated defaults the service uses unless a setting overrides them. The stored spec,
never a flag, decides how a model runs.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

# The runtimes, one vocabulary for both roles: ultralytics runs YOLO files and export folders,
# torchreid runs its .pth state dicts, onnx and openvino run exported graphs and Intel's IRs.
Backend = Literal["ultralytics", "torchreid", "onnx", "openvino"]
# Backends that can run on a GPU (REID_DEVICE=cuda); the others always run on the CPU.
GPU_BACKENDS: tuple[Backend, ...] = ("ultralytics", "torchreid")
# The modules each backend imports beyond the runtime: the torch extra has them all.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "ultralytics": ("torch", "ultralytics"),
    "torchreid": ("torch", "torchvision", "torchreid"),
    "onnx": ("onnxruntime",),
}
TORCH_EXTRA_INSTALL = "pip install -c requirements/dev.lock -e '.[torch]'"
# What ultralytics runs as a PyTorch network (on any device); its exports run on the CPU.
ULTRALYTICS_PYTORCH_SUFFIXES = (".pt", ".yaml")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def device_for(backend: Backend, weights: str, device: str) -> str:
    """The device a model runs on: ``device`` where its backend can use a GPU, else the CPU.

    Ultralytics runs its exports (OpenVINO, ONNX folders and files) on the CPU; only a PyTorch
    network (a ``.pt``, or a ``.yaml`` architecture) follows ``device``."""
    if backend not in GPU_BACKENDS or (backend == "ultralytics" and not weights.endswith(ULTRALYTICS_PYTORCH_SUFFIXES)):
        return "cpu"
    return device


class MissingExtra(RuntimeError):
    """A model's backend needs a package of the torch extra that is not installed."""


def needs_torch_extra(backend: Backend) -> bool:
    """Whether a backend runs on the torch extra rather than the runtime alone."""
    return backend in EXTRA_MODULES


def require_backend(backend: Backend, weights: str) -> None:
    """Raise :class:`MissingExtra`, naming the extra, unless ``backend``'s modules are installed."""
    missing = [name for name in EXTRA_MODULES.get(backend, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(
            f"{weights} runs on the {backend} backend, which needs {', '.join(missing)}: install the torch"
            f" extra ({TORCH_EXTRA_INSTALL}, or reid-service[torch])"
        )


class Preprocess(BaseModel):
    """How crops become embedder input: resize, channel order, scale, normalisation."""

    height: int = 256
    width: int = 128
    channels: Literal["RGB", "BGR"] = "RGB"
    scale: float = Field(1 / 255, description="Multiplies uint8 pixel values before mean/std.")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class EmbedderSpec(BaseModel):
    """Everything needed to run one stored embedder."""

    architecture: str = Field(description="e.g. osnet_x0_25, as torchreid's build_model names it.")
    backend: Backend
    weights: str = Field(description="File name inside the model's folder.")
    embedding_dim: int
    preprocess: Preprocess = Preprocess()
    threshold: float = Field(ge=0.0, le=1.0, description="Calibrated default match threshold.")
    precision: Literal["f32", "bf16"] = Field(
        "f32", description="Inference precision where the runtime offers a choice (OpenVINO on bf16-capable CPUs)."
    )
    quantized: str | None = Field(None, description="How the weights were quantised at import, e.g. 'int8 (NNCF)'.")


class DetectorSpec(BaseModel):
    """Everything needed to run one stored person detector.

    ``input_width`` x ``input_height`` is the network's input; images are shrunk to fit it with
    their aspect kept (``letterbox``: padded, as ultralytics does) or stretched to it
    (``stretch``, as Intel's detectors were trained). ``outputs`` says how to read the network:
    ``ultralytics`` (its own post-processing, COCO class 0 kept) or ``boxes_xyxy_score`` (one
    ``(N, 5)`` output named ``boxes``: x1, y1, x2, y2 in input pixels and a score, already
    suppressed, as Intel's Open Model Zoo person detectors give) or ``yolo_classes`` (an
    ultralytics export's ``(1, 4 + C, N)`` centres, sizes and class scores, run by OpenVINO
    itself and suppressed here).

    With ``large_persons`` the stored model holds two networks: this one for the persons shorter
    than ``large_person_height`` (at the second's input) and the second for the taller ones.
    """

    architecture: str
    backend: Backend
    weights: str = Field(description="File or export folder name inside the model's folder.")
    input_width: int = 640
    input_height: int = 640
    channels: Literal["RGB", "BGR"] = "BGR"
    resize: Literal["letterbox", "stretch"] = "letterbox"
    outputs: Literal["ultralytics", "boxes_xyxy_score", "yolo_classes"] = "ultralytics"
    pixel_scale: float = Field(1.0, gt=0, description="Multiplies 0..255 pixel values (1/255 for YOLO exports).")
    confidence: float = Field(0.25, ge=0.0, le=1.0, description="Calibrated default minimum score.")
    large_persons: DetectorSpec | None = Field(
        None,
        description="A second network, run beside this one, whose boxes are taken for persons at least"
        " large_person_height pixels tall at its input (this one keeps the shorter ones): reid.core.fusion.",
    )
    large_person_height: float = Field(80.0, gt=0, description="In pixels of the large-person network's input.")

    @model_validator(mode="before")
    @classmethod
    def _from_earlier_imports(cls, data: Any) -> Any:
        """Specs stored before detectors had backends of their own: ``pytorch``, ``onnx`` and
        ``torchscript`` files, and ``openvino`` export folders, all ran through ultralytics, at a
        square ``image_size``."""
        if isinstance(data, dict) and "image_size" in data:
            size = data["image_size"]
            data = {key: value for key, value in data.items() if key != "image_size"}
            data.update(backend="ultralytics", input_width=size, input_height=size)
        return data

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)`` of the network input."""
        return self.input_width, self.input_height


def describe_spec(spec: dict[str, Any]) -> str:
    """A stored spec in a few words, a detector's large-person network included."""
    keys = ("architecture", "backend", "confidence", "threshold", "quantized")
    words = ", ".join(f"{k} {spec[k]}" for k in keys if k in spec)
    if spec.get("large_persons"):
        words += f"; persons from {spec['large_person_height']:g} px: {describe_spec(spec['large_persons'])}"
    return words
