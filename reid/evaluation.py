"""Scoring answers against ground truth: detections to labelled boxes, matches to identities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid.boxes import box_iou
from reid.datasets import GroundTruth
from reid.matching import match
from reid.schemas import CompareResponse

MIN_IOU = 0.5
MIN_VISIBILITY = 0.5


def assigned_identities(boxes: np.ndarray, truth: GroundTruth, min_iou: float = MIN_IOU) -> np.ndarray:
    """One-to-one: the identity of the labelled person each ``(N, 4)`` box detects, else -1.

    Boxes and persons are paired the way persons are matched across images: the highest
    total IoU among pairs of at least ``min_iou``. For detector recall.
    """
    identities = np.full(len(boxes), -1, dtype=np.int64)
    pairs = match(box_iou(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), truth.boxes), min_iou)
    identities[pairs.rows] = truth.ids[pairs.cols]
    return identities


def best_identities(boxes: np.ndarray, truth: GroundTruth, min_iou: float = MIN_IOU) -> np.ndarray:
    """Per ``(N, 4)`` box, the identity of the labelled person it overlaps most (IoU >= ``min_iou``), else -1.

    Two boxes on one person both get that person: for judging whether a match is right.
    """
    if len(boxes) == 0 or len(truth.ids) == 0:
        return np.full(len(boxes), -1, dtype=np.int64)
    iou = box_iou(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), truth.boxes)
    best = iou.argmax(axis=1)
    return np.where(iou[np.arange(len(best)), best] >= min_iou, truth.ids[best], -1)


@dataclass(frozen=True)
class PairScore:
    """Counts for one compared pair of labelled frames."""

    matches: int  # matches with at least one box on a labelled person
    correct: int  # of those, both boxes on the same person
    unlabelled: int  # matches with neither box on a labelled person (not scored)
    matchable: int  # persons visible in both frames and detected in both
    found: int  # of those, correctly matched
    truth_persons: int  # visible labelled persons in the two frames
    detected_persons: int  # of those, detected (one-to-one, IoU >= 0.5)

    @property
    def precision(self) -> float:
        return self.correct / self.matches if self.matches else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.matchable if self.matchable else 1.0


def score_pair(response: CompareResponse, truth1: GroundTruth, truth2: GroundTruth) -> PairScore:
    """Score one ``/compare`` answer on two labelled frames.

    A match is right when both boxes' best-IoU identities (IoU >= 0.5, any visibility) agree,
    wrong when they differ or only one box is on a labelled person, and unscored when neither
    is. Recall is over persons at least half visible in both frames and detected in both.
    """
    boxes1 = np.array([p.bbox for p in response.image1_persons], dtype=np.float64).reshape(-1, 4)
    boxes2 = np.array([p.bbox for p in response.image2_persons], dtype=np.float64).reshape(-1, 4)
    best1, best2 = best_identities(boxes1, truth1), best_identities(boxes2, truth2)
    pairs = [(best1[m.image1_index], best2[m.image2_index]) for m in response.matches]
    scored = [(a, b) for a, b in pairs if a >= 0 or b >= 0]
    right = {a for a, b in scored if a == b}
    visible1, visible2 = truth1.visible(MIN_VISIBILITY), truth2.visible(MIN_VISIBILITY)
    detected1, detected2 = assigned_identities(boxes1, visible1), assigned_identities(boxes2, visible2)
    matchable = (set(detected1.tolist()) & set(detected2.tolist())) - {-1}
    return PairScore(
        matches=len(scored),
        correct=sum(1 for a, b in scored if a == b),
        unlabelled=len(pairs) - len(scored),
        matchable=len(matchable),
        found=len(right & matchable),
        truth_persons=len(visible1.ids) + len(visible2.ids),
        detected_persons=int((detected1 >= 0).sum() + (detected2 >= 0).sum()),
    )


def total(scores: list[PairScore]) -> dict[str, float]:
    """Micro-averaged precision, recall, F1 and detector recall over many pairs."""
    matches = sum(s.matches for s in scores)
    matchable = sum(s.matchable for s in scores)
    precision = sum(s.correct for s in scores) / matches if matches else 1.0
    recall = sum(s.found for s in scores) / matchable if matchable else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "detector_recall": sum(s.detected_persons for s in scores) / max(1, sum(s.truth_persons for s in scores)),
        "pairs": len(scores),
        "matches": matches,
        "unlabelled_matches": sum(s.unlabelled for s in scores),
    }
