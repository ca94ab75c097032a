"""Vectorised operations on ``(N, 4)`` arrays of ``x1, y1, x2, y2`` boxes in pixels."""

from __future__ import annotations

import cv2
import numpy as np


def to_pixel_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Round ``(N, 4)`` float boxes to integer pixels inside a ``width`` x ``height`` image.

    Every box keeps at least one pixel of width and height, so that it always crops something.
    """
    boxes = np.rint(np.asarray(xyxy, dtype=np.float64)).astype(np.int64).reshape(-1, 4)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    boxes[:, 0] = np.minimum(boxes[:, 0], width - 1)
    boxes[:, 1] = np.minimum(boxes[:, 1], height - 1)
    boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0] + 1)
    boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1] + 1)
    return boxes


def reading_order(xyxy: np.ndarray) -> np.ndarray:
    """Indices that sort boxes left to right by centre x, ties top to bottom by centre y."""
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    return np.lexsort((centres[:, 1], centres[:, 0]))


def box_area(xyxy: np.ndarray) -> np.ndarray:
    """``(N,)`` areas in square pixels; inverted boxes count as empty."""
    return (xyxy[:, 2] - xyxy[:, 0]).clip(0) * (xyxy[:, 3] - xyxy[:, 1]).clip(0)


def intersection_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` areas shared by every box of ``a`` ``(N, 4)`` and of ``b`` ``(M, 4)``."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return (bottom_right - top_left).clip(0).prod(axis=2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``."""
    inter = intersection_area(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def pad_boxes(boxes: np.ndarray, padding: float, width: int, height: int) -> np.ndarray:
    """Integer ``(N, 4)`` boxes grown by ``padding`` times their size on every side, kept inside the image."""
    if padding == 0:
        return boxes
    sizes = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    grown = boxes + np.array([-1, -1, 1, 1]) * padding * sizes
    return to_pixel_boxes(grown, width, height)


def containment(xyxy: np.ndarray) -> np.ndarray:
    """``(N, N)``: entry ``[i, j]`` is the share of box ``j``'s area that lies inside box ``i``."""
    inter = intersection_area(xyxy, xyxy).astype(np.float64)
    area = box_area(xyxy).astype(np.float64)
    share = np.divide(inter, area[None, :], out=np.zeros_like(inter), where=area[None, :] > 0)
    np.fill_diagonal(share, 0.0)
    return share


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The ``(h, w, 3)`` view of ``image`` under one integer pixel box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[y1:y2, x1:x2]


def suppress_duplicates(rows: np.ndarray, iou: float) -> np.ndarray:
    """``(N, 5)`` ``x1, y1, x2, y2, score`` rows without those overlapping a more confident one by
    more than ``iou`` (greedy non-maximum suppression), by descending score."""
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    if len(rows) > 1:
        xywh = np.concatenate([rows[:, :2], rows[:, 2:4] - rows[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), rows[:, 4].tolist(), 0.0, iou)
        rows = rows[np.asarray(keep, dtype=np.int64).reshape(-1)]
    return rows[np.argsort(-rows[:, 4], kind="stable")]
