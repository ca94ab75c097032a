"""One set of person boxes from two detectors, each trusted where it is strong: by person height.

A detector made for surveillance views finds small, distant people well but draws one box
across neighbours who stand side by side facing the camera; a general detector draws one box
per person there but misses the small ones. :func:`fuse_by_height` keeps the first's boxes of
persons shorter than a height; of the taller ones, the first's where the second confirms them,
and the second's where the first drew one box across neighbours or missed someone.
"""

from __future__ import annotations

import numpy as np

from reid.core.boxes import box_area, box_iou, intersection_area, suppress_duplicates

# A tall box of each detector on the same person: IoU at least this.
SAME_PERSON_IOU = 0.5
# A tall box of the small-person detector holds a large-person box with this share of it inside;
# holding two, it is a box across neighbours.
HOLDS_SHARE = 0.7
# A large-person box overlapping a tall small-person box this much (IoU) saw someone there.
OVERLAP_IOU = 0.3
# Boxes of the fused set that overlap a more confident one this much (IoU) are the same person.
NMS_IOU = 0.6


def fuse_by_height(small: np.ndarray, large: np.ndarray, min_height: float) -> np.ndarray:
    """Fuse ``(N, 5)`` and ``(M, 5)`` ``x1, y1, x2, y2, score`` rows of one image (pixels).

    - boxes shorter than ``min_height`` (pixels) come from ``small``;
    - of the taller ones, a ``small`` box stays where ``large`` boxed the same person
      (IoU >= ``SAME_PERSON_IOU``) and nobody else (it holds no second ``large`` box,
      ``HOLDS_SHARE``), or where ``large`` saw nobody (no overlap of ``OVERLAP_IOU``);
    - every other tall person is ``large``'s box: where ``small`` drew one box across
      neighbours, or missed the person;
    - then boxes of one person twice (IoU >= ``NMS_IOU``) keep the most confident.

    Returns ``(K, 5)`` float32 rows by descending score.
    """
    small = np.asarray(small, dtype=np.float32).reshape(-1, 5)
    large = np.asarray(large, dtype=np.float32).reshape(-1, 5)
    is_tall = (small[:, 3] - small[:, 1]) >= min_height
    tall, short = small[is_tall], small[~is_tall]
    large = large[(large[:, 3] - large[:, 1]) >= min_height]
    if len(large) and len(tall):
        iou = box_iou(large[:, :4], tall[:, :4])  # (M, T)
        holds = (intersection_area(tall[:, :4], large[:, :4]) / box_area(large[:, :4]).clip(1e-6)) >= HOLDS_SHARE
        best = iou.argmax(axis=1)
        same = iou[np.arange(len(large)), best] >= SAME_PERSON_IOU
        confirmed = np.zeros(len(tall), dtype=bool)
        confirmed[best[same]] = True
        confirmed &= holds.sum(axis=1) <= 1
        unseen = (iou.max(axis=0) < OVERLAP_IOU) & ~holds.any(axis=1)
        large = large[~(same & confirmed[best])]
        tall = tall[confirmed | unseen]
    return suppress_duplicates(np.concatenate([short, large, tall]), NMS_IOU)
