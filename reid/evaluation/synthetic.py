"""Synthetic second views: a labelled photo and a copy of it changed by a known transform.

From any photo with person boxes, image2 is the photo cropped, scaled, mirrored, warped in
perspective, recoloured, blurred and re-encoded as JPEG; each box goes through the same
geometry, so which person of image1 is which of image2 is known exactly. What this does not
test: a real change of viewpoint, pose, lighting or time (the person is the same pixels,
transformed), so it measures detection and embedding stability, not cross-camera ReID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid.core.boxes import box_area
from reid.core.images import read_rgb
from reid.evaluation.datasets import GroundTruth, MotSequence, mot_sequences


@dataclass(frozen=True)
class ViewChange:
    """One drawn transform: ``homography`` ``(3, 3)`` maps image1 pixels to image2 pixels."""

    homography: np.ndarray
    size: tuple[int, int]  # (width, height) of image2
    gamma: float
    saturation: float
    blur_sigma: float  # pixels; 0: none
    jpeg_quality: int


def draw_change(width: int, height: int, rng: np.random.Generator) -> ViewChange:
    """A random crop (keeping 70 to 100% of each side), a scale of 0.6 to 1, a mirror half the
    time, a perspective tilt of up to 6% of a side, and photometric changes."""
    keep = rng.uniform(0.7, 1.0, size=2)
    crop_w, crop_h = width * keep[0], height * keep[1]
    x0, y0 = rng.uniform(0, width - crop_w), rng.uniform(0, height - crop_h)
    scale = rng.uniform(0.6, 1.0)
    out_w, out_h = max(16, round(crop_w * scale)), max(16, round(crop_h * scale))
    source = np.array([[x0, y0], [x0 + crop_w, y0], [x0 + crop_w, y0 + crop_h], [x0, y0 + crop_h]], np.float32)
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float32)
    target += rng.uniform(-0.06, 0.06, size=(4, 2)).astype(np.float32) * np.array([out_w, out_h], np.float32)
    if rng.random() < 0.5:
        target[:, 0] = out_w - target[:, 0]
    return ViewChange(
        homography=cv2.getPerspectiveTransform(source, target).astype(np.float64),
        size=(out_w, out_h),
        gamma=float(rng.uniform(0.7, 1.4)),
        saturation=float(rng.uniform(0.6, 1.3)),
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.5, 1.5)])),
        jpeg_quality=int(rng.integers(50, 96)),
    )


def apply_to_image(image: np.ndarray, change: ViewChange) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB image as seen through ``change``: ``(h, w, 3)`` uint8 RGB."""
    warped = cv2.warpPerspective(image, change.homography, change.size, flags=cv2.INTER_AREA, borderValue=(0, 0, 0))
    hsv = cv2.cvtColor(warped, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = (hsv[..., 1] * change.saturation).clip(0, 255)
    hsv[..., 2] = 255.0 * (hsv[..., 2] / 255.0) ** change.gamma
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if change.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), change.blur_sigma)
    ok, encoded = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, change.jpeg_quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    assert decoded is not None, "JPEG round trip failed"
    return decoded[:, :, ::-1]


def apply_to_boxes(boxes: np.ndarray, change: ViewChange) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4)`` xyxy boxes of image1 to image2: the ``(N, 4)`` axis-aligned hull of each
    warped box clipped to image2, and the ``(N,)`` share (0..1) of the hull left inside it."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1)
    warped = cv2.perspectiveTransform(corners.reshape(-1, 1, 2).astype(np.float64), change.homography).reshape(-1, 4, 2)
    hull = np.concatenate([warped.min(axis=1), warped.max(axis=1)], axis=1)
    width, height = change.size
    clipped = hull.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    inside = np.divide(box_area(clipped), box_area(hull), out=np.zeros(len(boxes)), where=box_area(hull) > 0)
    return clipped, inside


def write_pair(folder: Path, image: np.ndarray, truth: GroundTruth, change: ViewChange) -> None:
    """A two-frame MOT-style sequence in ``folder``: frame 1 the photo, frame 2 its changed view,
    and ``gt/gt.txt`` for both (visibility of frame 2: the photo's times the share kept)."""
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    second = apply_to_image(image, change)
    for number, pixels in ((1, image), (2, second)):
        cv2.imwrite(str(folder / "img1" / f"{number:06d}.jpg"), pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    boxes2, inside = apply_to_boxes(truth.boxes, change)
    rows = []
    for number, boxes, visibility in ((1, truth.boxes, truth.visibility), (2, boxes2, truth.visibility * inside)):
        for identity, box, seen in zip(truth.ids, boxes, visibility):
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
                rows.append(f"{number},{identity},{x:.1f},{y:.1f},{w:.1f},{h:.1f},1,1,{seen:.3f}")
        for box in truth.ignored if number == 1 else apply_to_boxes(truth.ignored, change)[0]:
            rows.append(f"{number},-1,{box[0]:.1f},{box[1]:.1f},{box[2] - box[0]:.1f},{box[3] - box[1]:.1f},0,8,0")
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")


def synthetic_pairs(source: Path, target: Path, seed: int = 0) -> list[MotSequence]:
    """For every frame of every sequence below ``source``, a two-frame sequence in ``target``
    (photo and changed view), drawn with ``seed``; the sequences read back."""
    rng = np.random.default_rng(seed)
    for sequence in mot_sequences(source):
        for number in sequence.frame_numbers():
            image = read_rgb(sequence.frames[number])
            change = draw_change(image.shape[1], image.shape[0], rng)
            write_pair(target / f"{sequence.name}-{number:06d}", image, sequence.truth[number], change)
    return mot_sequences(target)


def distant_copies(source: Path, target: Path, scale: float = 0.4) -> list[MotSequence]:
    """Every sequence below ``source`` as seen from farther away: frames and boxes shrunk by
    ``scale`` (0..1), so that its people are that many times smaller; the sequences read back.
    What this does not test: the haze, blur and perspective of real distance."""
    for sequence in mot_sequences(source):
        folder = target / sequence.name
        (folder / "img1").mkdir(parents=True, exist_ok=True)
        (folder / "gt").mkdir(exist_ok=True)
        rows = np.loadtxt(
            sequence.frames[sequence.frame_numbers()[0]].parents[1] / "gt" / "gt.txt", delimiter=",", ndmin=2
        )
        rows[:, 2:6] *= scale
        np.savetxt(folder / "gt" / "gt.txt", rows, delimiter=",", fmt="%g")
        for number, path in sequence.frames.items():
            image = read_rgb(path)
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folder / "img1" / f"{number:06d}.jpg"), small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return mot_sequences(target)
