"""Person detection: images to ``(N, 5)`` boxes and scores, with the runtime the stored spec names.

Two backends behind one interface, ``detect(images) -> list of (N, 5)``:

- ``ultralytics``: a YOLO ``.pt`` or an ultralytics export folder (OpenVINO, ONNX...); COCO
  class 0 (person) kept, ultralytics' own letterbox and NMS.
- ``openvino``: an OpenVINO IR whose ``boxes`` output is ``(N, 5)`` x1, y1, x2, y2, score in
  input pixels, already suppressed (Intel's Open Model Zoo person detectors, e.g.
  person-detection-0203 and -0303).

A spec with ``large_persons`` runs two of them side by side (:class:`TwoScaleDetector`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from reid.core.boxes import suppress_duplicates
from reid.core.fusion import fuse_by_height
from reid.models.specs import DetectorSpec, device_for, require_backend

PERSON_CLASS = 0  # COCO
# Letterbox padding: the grey ultralytics pads with.
PAD_VALUE = 114


class Detector(Protocol):
    """What every detector backend offers."""

    spec: DetectorSpec

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Per ``(H, W, 3)`` uint8 RGB image, an ``(N, 5)`` float32 array of ``x1, y1, x2, y2``
        in that image's pixels and the score, rows by descending score."""
        ...


@dataclass(frozen=True)
class DetectorOptions:
    """What the service decides beyond the stored spec."""

    confidence: float  # minimum score
    nms_iou: float = 0.7  # IoU of ultralytics' NMS (Intel's detectors suppress inside the network)
    max_detections: int = 100
    min_box_side: float = 4.0  # boxes narrower or shorter than this, in network-input pixels, are dropped
    device: str = "cpu"


def load_ultralytics():
    """Import ultralytics with its network calls (settings sync, online checks) turned off."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import ultralytics

    ultralytics.settings.update({"sync": False})
    return ultralytics


def open_detector(folder: Path, spec: DetectorSpec, options: DetectorOptions) -> Detector:
    """The detector a stored spec describes, ready to run."""
    backends: dict[str, Callable[[Path, DetectorSpec, DetectorOptions], Detector]] = {
        "ultralytics": UltralyticsDetector,
        "openvino": OpenVinoDetector,
    }
    if spec.backend not in backends:
        raise ValueError(f"no detector backend {spec.backend!r}; known: {', '.join(backends)}")
    require_backend(spec.backend, spec.weights)
    if spec.large_persons is not None:
        small = open_detector(folder, spec.model_copy(update={"large_persons": None}), options)
        large_options = replace(options, confidence=spec.large_persons.confidence)
        large = open_detector(folder, spec.large_persons, large_options)
        return TwoScaleDetector(small, large, spec, options.max_detections)
    return backends[spec.backend](Path(folder) / spec.weights, spec, options)


class TwoScaleDetector:
    """Two detectors on every image: the spec's own network for persons shorter than
    ``large_person_height`` pixels at the second network's input, the second for the taller
    ones (:func:`reid.core.fusion.fuse_by_height`)."""

    def __init__(self, small: Detector, large: Detector, spec: DetectorSpec, max_detections: int) -> None:
        self.small, self.large, self.spec = small, large, spec
        self.max_detections = max_detections

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`Detector.detect`."""
        found = zip(images, self.small.detect(images), self.large.detect(images))
        return [
            fuse_by_height(small, large, self.min_height(image.shape))[: self.max_detections]
            for image, small, large in found
        ]

    def min_height(self, shape: tuple[int, ...]) -> float:
        """The height, in pixels of an ``(H, W, ...)`` image, from which on the large network's boxes count."""
        return self.spec.large_person_height / input_scale(shape, self.large.spec)


class UltralyticsDetector:
    """COCO persons from any file ultralytics loads. Exports have a static batch of 1 and run
    image by image; a ``.pt`` runs whole batches."""

    def __init__(self, weights: Path, spec: DetectorSpec, options: DetectorOptions) -> None:
        ultralytics = load_ultralytics()
        self.spec = spec
        self.model = ultralytics.YOLO(str(weights), task="detect")
        self.batched = weights.suffix == ".pt"
        self.arguments = dict(
            conf=options.confidence,
            iou=options.nms_iou,
            max_det=options.max_detections,
            imgsz=max(spec.input_size),
            classes=[PERSON_CLASS],
            device=device_for(spec.backend, spec.weights, options.device),
            verbose=False,
        )
        self.min_box_side = options.min_box_side

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`Detector.detect`."""
        # ultralytics takes arrays as BGR, the OpenCV convention.
        bgr = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]
        if self.batched:
            results = self.model.predict(bgr, **self.arguments) if bgr else []
        else:
            results = [self.model.predict(image, **self.arguments)[0] for image in bgr]
        return [self._rows(result, image.shape) for result, image in zip(results, images)]

    def _rows(self, result, shape: tuple[int, ...]) -> np.ndarray:
        boxes = result.boxes
        rows = np.concatenate([boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None]], axis=1)
        # min_box_side is in network-input pixels.
        return _without_small(rows.astype(np.float32), self.min_box_side / input_scale(shape, self.spec))


class OpenVinoDetector:
    """An OpenVINO IR: Intel's person detectors (a ``boxes`` output of ``(N, 5)`` rows in input
    pixels) or an ultralytics YOLO export (``(1, 4 + C, N)`` centre, size and class scores,
    suppressed here as ultralytics does).

    The network has a static batch of 1; the images of a call run side by side in OpenVINO's
    throughput streams (one core each here), which takes less CPU per image than spreading one
    image over every core, and lets the two images of a compare finish together.
    """

    def __init__(self, weights: Path, spec: DetectorSpec, options: DetectorOptions) -> None:
        import openvino

        core = openvino.Core()
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}
        compiled = core.compile_model(core.read_model(str(weights)), "CPU", config)
        streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.requests = [compiled.create_infer_request() for _ in range(streams)]
        if spec.outputs == "boxes_xyxy_score":
            self.boxes, self.decode = compiled.output("boxes"), _boxes_rows
        elif spec.outputs == "yolo_classes":
            self.boxes, self.decode = compiled.output(0), partial(_yolo_rows, options=options)
        else:
            raise ValueError(f"{weights}: the openvino detector backend reads boxes_xyxy_score or yolo_classes outputs")
        self.spec = spec
        self.options = options
        self.lock = threading.Lock()  # one call at a time owns the requests

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`Detector.detect`."""
        found: list[np.ndarray] = []
        with self.lock:
            for start in range(0, len(images), len(self.requests)):
                found += self._run(images[start : start + len(self.requests)])
        return found

    def _run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """At most one image per stream, side by side."""
        scales = []
        for request, image in zip(self.requests, images):
            tensor, scale = network_input(image, self.spec)
            scales.append(scale)
            request.start_async({0: tensor})
        rows = []
        for request, scale, image in zip(self.requests, scales, images):
            request.wait()
            rows.append(self._in_image(self.decode(request.get_tensor(self.boxes).data), scale, image.shape))
        return rows

    def _in_image(self, rows: np.ndarray, scale: tuple[float, float], shape: tuple[int, ...]) -> np.ndarray:
        sx, sy = scale
        # Rows past the last detection are padding with a score of 0.
        rows = rows[(rows[:, 4] >= self.options.confidence) & (rows[:, 4] > 0)]
        rows = _without_small(rows, self.options.min_box_side)
        rows[:, :4] /= np.array([sx, sy, sx, sy], dtype=np.float32)
        height, width = shape[:2]
        rows[:, [0, 2]] = rows[:, [0, 2]].clip(0, width)
        rows[:, [1, 3]] = rows[:, [1, 3]].clip(0, height)
        order = np.argsort(-rows[:, 4], kind="stable")[: self.options.max_detections]
        return rows[order]


def _boxes_rows(output: np.ndarray) -> np.ndarray:
    """Intel's ``(N, 5)`` output as it is: x1, y1, x2, y2, score in input pixels."""
    return output.astype(np.float32).reshape(-1, 5)


def _yolo_rows(output: np.ndarray, options: DetectorOptions) -> np.ndarray:
    """A YOLO export's ``(1, 4 + C, N)`` output to ``(M, 5)`` persons in input pixels: the
    person-class score, at least ``options.confidence``, suppressed at ``options.nms_iou``."""
    candidates = output[0].T
    scores = candidates[:, 4 + PERSON_CLASS]
    keep = scores >= options.confidence
    centre, size = candidates[keep, :2], candidates[keep, 2:4]
    rows = np.concatenate([centre - size / 2, centre + size / 2, scores[keep, None]], axis=1)
    return suppress_duplicates(rows, options.nms_iou)


def network_input(image: np.ndarray, spec: DetectorSpec) -> tuple[np.ndarray, tuple[float, float]]:
    """An ``(H, W, 3)`` uint8 RGB image as a ``(1, 3, h, w)`` float32 network input (0..255 times
    the spec's ``pixel_scale``, its channel order), and the ``(x, y)`` scale from image to input pixels."""
    height, width = image.shape[:2]
    in_width, in_height = spec.input_size
    if spec.resize == "stretch":
        sx, sy = in_width / width, in_height / height
        canvas = _resize(image, in_width, in_height)
    else:
        sx = sy = min(in_width / width, in_height / height)
        new_width, new_height = max(1, round(width * sx)), max(1, round(height * sy))
        canvas = np.full((in_height, in_width, 3), PAD_VALUE, np.uint8)
        canvas[:new_height, :new_width] = _resize(image, new_width, new_height)
    if spec.channels == "BGR":
        canvas = canvas[:, :, ::-1]
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    if spec.pixel_scale != 1:
        tensor *= spec.pixel_scale
    return tensor, (sx, sy)


def input_scale(shape: tuple[int, ...], spec: DetectorSpec) -> float:
    """How many network-input pixels one image pixel of an ``(H, W, ...)`` image becomes, vertically."""
    height, width = shape[:2]
    if spec.resize == "stretch":
        return spec.input_height / height
    return min(spec.input_width / width, spec.input_height / height)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _without_small(rows: np.ndarray, min_side: float) -> np.ndarray:
    sides = np.minimum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    return rows[sides >= min_side]
