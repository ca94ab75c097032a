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


def retrieval_metrics(
    similarity: np.ndarray,
    query_ids: np.ndarray,
    query_cams: np.ndarray,
    gallery_ids: np.ndarray,
    gallery_cams: np.ndarray,
) -> dict[str, float]:
    """Rank-1, rank-5 and mAP of ``(Q, G)`` query-to-gallery similarities, standard protocol.

    For each query, gallery entries of the same identity seen by the same camera are left out;
    queries left with no entry of their identity are not scored (``queries`` counts the rest).
    """
    hits1, hits5, precisions = [], [], []
    for q in range(len(query_ids)):
        keep = ~((gallery_ids == query_ids[q]) & (gallery_cams == query_cams[q]))
        relevant = (gallery_ids[keep] == query_ids[q])[np.argsort(-similarity[q, keep], kind="stable")]
        if not relevant.any():
            continue
        hits1.append(relevant[:1].any())
        hits5.append(relevant[:5].any())
        ranks = np.flatnonzero(relevant) + 1
        precisions.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    if not precisions:
        return {"rank1": float("nan"), "rank5": float("nan"), "mAP": float("nan"), "queries": 0}
    return {
        "rank1": float(np.mean(hits1)),
        "rank5": float(np.mean(hits5)),
        "mAP": float(np.mean(precisions)),
        "queries": len(precisions),
    }


def frame_pairs(frames: list[int], spread: int = 4) -> list[tuple[int, int]]:
    """Pairs of frames to compare: up to ``spread`` frames evenly apart (first and last
    included), every pair of them."""
    picks = sorted({int(i) for i in np.linspace(0, len(frames) - 1, min(spread, len(frames))).round()})
    return [(frames[a], frames[b]) for k, a in enumerate(picks) for b in picks[k + 1 :]]


def labelled_similarities(similarity: np.ndarray, ids1: np.ndarray, ids2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split an ``(N, M)`` similarity matrix into same-identity and different-identity values,
    over rows and columns with a known identity (>= 0) and a real similarity (> -1)."""
    known = (ids1[:, None] >= 0) & (ids2[None, :] >= 0) & (similarity > -1)
    same = ids1[:, None] == ids2[None, :]
    return similarity[known & same], similarity[known & ~same]


def pair_f1(same: np.ndarray, different: np.ndarray, threshold: float) -> float:
    """F1 of calling a pair "same person" when its similarity is at least ``threshold``."""
    true_pos = int((same >= threshold).sum())
    false_pos = int((different >= threshold).sum())
    false_neg = len(same) - true_pos
    return 2 * true_pos / (2 * true_pos + false_pos + false_neg) if true_pos else 0.0


def best_pair_threshold(same: np.ndarray, different: np.ndarray, step: float = 0.01) -> tuple[float, float]:
    """The threshold in ``[0, 1]`` that maximises :func:`pair_f1` (the middle of the best run
    on the grid, so that a plateau gives its centre), and that F1."""
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    scores = np.array([pair_f1(same, different, t) for t in grid])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    longest = max(runs, key=len)
    return float(grid[longest[len(longest) // 2]]), float(scores.max())
