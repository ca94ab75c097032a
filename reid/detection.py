"""Person detection with any detector ultralytics can load: a ``.pt`` or an export folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PERSON_CLASS = 0  # COCO


def load_ultralytics():
    """Import ultralytics with its network calls (settings sync, online checks) turned off."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import ultralytics

    ultralytics.settings.update({"sync": False})
    return ultralytics


class YoloDetector:
    """COCO person boxes from RGB images.

    Args:
        weights: a ``.pt`` file or an export folder (OpenVINO, ONNX...): ultralytics picks
            the runtime from it. Exports have a static batch of 1 and run image by image.
    """

    def __init__(
        self,
        weights: Path,
        *,
        confidence: float,
        nms_iou: float,
        max_detections: int,
        min_box_side: float,
        image_size: int,
        device: str = "cpu",
    ) -> None:
        ultralytics = load_ultralytics()
        self.model = ultralytics.YOLO(str(weights), task="detect")
        self.batched = Path(weights).suffix == ".pt"
        self.options = dict(
            conf=confidence,
            iou=nms_iou,
            max_det=max_detections,
            imgsz=image_size,
            classes=[PERSON_CLASS],
            device=device,
            verbose=False,
        )
        self.min_box_side = min_box_side

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Detect persons in ``(H, W, 3)`` uint8 RGB images of any sizes.

        Returns, per image, an ``(N, 5)`` float32 array: ``x1, y1, x2, y2`` in that image's
        pixels, then the confidence; rows by descending confidence.
        """
        # ultralytics takes arrays as BGR, the OpenCV convention.
        bgr = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]
        if self.batched:
            results = self.model.predict(bgr, **self.options) if bgr else []
        else:
            results = [self.model.predict(image, **self.options)[0] for image in bgr]
        return [self._persons(result.boxes) for result in results]

    def _persons(self, boxes) -> np.ndarray:
        rows = np.concatenate([boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None]], axis=1).astype(np.float32)
        sides = np.minimum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
        return rows[sides >= self.min_box_side]
