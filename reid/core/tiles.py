"""Views of an image for the detector: the whole frame, and for images much larger than the
detector's input, overlapping tiles seen at a finer scale; then their boxes merged into one set.

Far and small people are lost when a 1080p frame is shrunk to a detector's input (a third of
its size for a 640-pixel YOLO); a tile shows them ``tile_zoom`` times larger. Boxes a tile cuts
at an inner edge are partial people that the whole frame or the next tile sees whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from reid.core.boxes import suppress_duplicates

# Boxes within this many view pixels of a tile's inner edge are cut by it.
EDGE_MARGIN = 2.0
# Boxes of one person seen in two views overlap at least this much (IoU) and are merged.
MERGE_IOU = 0.6


@dataclass(frozen=True)
class View:
    """Part of an image, shrunk to fit the detector's input.

    ``pixels`` is ``(h, w, 3)`` uint8 RGB; view coordinates divided by ``scale`` plus ``origin``
    are image coordinates. ``inner_edges`` marks the ``(left, top, right, bottom)`` sides that
    lie inside the image (a tile's cut), as opposed to the image's own border.
    """

    pixels: np.ndarray
    origin: tuple[int, int]
    scale: float
    inner_edges: tuple[bool, bool, bool, bool] = (False, False, False, False)


def fit_scale(width: int, height: int, input_size: tuple[int, int]) -> float:
    """The scale that makes a ``width`` x ``height`` region fit ``input_size`` with its aspect
    kept; never above 1 (the detector resizes up itself where it must)."""
    return min(1.0, input_size[0] / width, input_size[1] / height)


def tile_spans(length: int, tile: int, overlap: float) -> list[tuple[int, int]]:
    """``(start, end)`` spans of ``tile`` pixels covering ``0..length``, evenly spread, adjacent
    spans sharing at least ``overlap`` of a tile; one span when a tile nearly covers it."""
    if tile >= length * (1 - overlap):
        return [(0, length)]
    count = math.ceil((length - tile) / (tile * (1 - overlap))) + 1
    starts = np.linspace(0, length - tile, count).round().astype(int)
    return [(int(s), int(s) + tile) for s in starts]


def detection_views(
    image: np.ndarray, input_size: tuple[int, int], tile_zoom: float = 0.0, overlap: float = 0.2
) -> list[View]:
    """The whole image, then tiles ``tile_zoom`` times finer than it (none when ``tile_zoom``
    is under 1 or the image is small enough to be seen at that scale whole)."""
    height, width = image.shape[:2]
    whole_scale = fit_scale(width, height, input_size)
    views = [View(_shrink(image, whole_scale), (0, 0), whole_scale)]
    if tile_zoom < 1 or whole_scale * tile_zoom >= 1:
        return views
    tile_scale = whole_scale * tile_zoom
    tile_width = min(width, round(input_size[0] / tile_scale))
    tile_height = min(height, round(input_size[1] / tile_scale))
    for y1, y2 in tile_spans(height, tile_height, overlap):
        for x1, x2 in tile_spans(width, tile_width, overlap):
            region = image[y1:y2, x1:x2]
            scale = fit_scale(x2 - x1, y2 - y1, input_size)
            inner = (x1 > 0, y1 > 0, x2 < width, y2 < height)
            views.append(View(_shrink(region, scale), (x1, y1), scale, inner))
    return views


def to_image_boxes(rows: np.ndarray, view: View) -> np.ndarray:
    """``(N, 5)`` detections in view pixels to image pixels, dropping boxes a tile's inner edge cuts."""
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    height, width = view.pixels.shape[:2]
    left, top, right, bottom = view.inner_edges
    cut = np.zeros(len(rows), dtype=bool)
    if left:
        cut |= rows[:, 0] <= EDGE_MARGIN
    if top:
        cut |= rows[:, 1] <= EDGE_MARGIN
    if right:
        cut |= rows[:, 2] >= width - EDGE_MARGIN
    if bottom:
        cut |= rows[:, 3] >= height - EDGE_MARGIN
    rows = rows[~cut].copy()
    x0, y0 = view.origin
    rows[:, :4] = rows[:, :4] / view.scale + np.array([x0, y0, x0, y0], dtype=np.float32)
    return rows


def merge_views(per_view: list[np.ndarray], views: list[View], merge_iou: float = MERGE_IOU) -> np.ndarray:
    """One ``(N, 5)`` set of image-pixel detections from every view's, by descending score:
    where views saw the same person (IoU at least ``merge_iou``) the highest score stays."""
    rows = np.concatenate([to_image_boxes(found, view) for found, view in zip(per_view, views)])
    if len(views) > 1:
        return suppress_duplicates(rows, merge_iou)
    return rows[np.argsort(-rows[:, 4], kind="stable")]


def _shrink(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
