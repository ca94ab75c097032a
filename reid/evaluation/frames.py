"""Scoring answers on labelled frames: the detector's boxes against the labelled persons, and a
``/compare`` answer's matches against their identities (precision, recall, F1 of a pair of frames
and over many pairs), and which frames of a sequence to pair and which of those pairs to run
whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from reid.core.boxes import box_iou
from reid.core.matching import match
from reid.evaluation.datasets import GroundTruth
from reid.schemas import CompareResponse

MIN_IOU = 0.5
MIN_VISIBILITY = 0.5
# A box overlapping two labelled persons at least this much (IoU) each is one box across two people.
MERGED_IOU = 0.3

Frame = TypeVar("Frame")  # whatever names a frame: its path, its number


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
    present: int  # persons at least half visible in both frames: what the service should match
    found: int  # of those, correctly matched (a person the detector missed is a miss)
    detected: int  # of the present, those detected in both frames
    found_detected: int  # of those, correctly matched
    truth_persons: int  # visible labelled persons in the two frames
    detected_persons: int  # of those, detected (one-to-one, IoU >= 0.5)
    detections: int  # boxes the detector gave, not counting those on ignored people
    true_detections: int  # of those, on a labelled person (one-to-one, IoU >= 0.5, any visibility)
    merged: int  # boxes across two labelled persons (IoU >= MERGED_IOU with each)

    @property
    def precision(self) -> float:
        """Share of scored matches that are right (1 when there are none)."""
        return self.correct / self.matches if self.matches else 1.0

    @property
    def recall(self) -> float:
        """Share of persons present in both frames matched right (1 when there are none)."""
        return self.found / self.present if self.present else 1.0


def detection_counts(boxes: np.ndarray, truth: GroundTruth) -> tuple[int, int]:
    """``(detections, true detections)`` of ``(N, 4)`` boxes on one frame: a box is true when
    paired one to one with a labelled person (IoU >= 0.5, any visibility); an unpaired box on
    an ignored person-like region counts neither way."""
    identities = assigned_identities(boxes, truth)
    spare = boxes[identities < 0]
    on_ignored = 0
    if len(spare) and len(truth.ignored):
        on_ignored = int((box_iou(spare, truth.ignored).max(axis=1) >= MIN_IOU).sum())
    return len(boxes) - on_ignored, int((identities >= 0).sum())


def merged_boxes(boxes: np.ndarray, truth: GroundTruth) -> int:
    """How many of the ``(N, 4)`` boxes overlap two or more labelled persons (any visibility) at
    IoU >= ``MERGED_IOU`` each: one box drawn across neighbours."""
    if len(boxes) == 0 or len(truth.ids) == 0:
        return 0
    return int(((box_iou(boxes, truth.boxes) >= MERGED_IOU).sum(axis=1) >= 2).sum())


@dataclass(frozen=True)
class LabelledPair:
    """A compared pair of labelled frames' boxes against their labels: what does not depend on
    which boxes are matched (so a pair is labelled once for every threshold)."""

    best1: np.ndarray  # (N1,) int64 per box of the first frame, its most-overlapped identity (-1: none)
    best2: np.ndarray  # (N2,) the same for the second frame
    present: frozenset[int]  # identities at least half visible in both frames
    detected: frozenset[int]  # of those, detected in both
    counts: dict[str, int]  # PairScore's detector counts: truth_persons ... merged


def label_pair(boxes1: np.ndarray, boxes2: np.ndarray, truth1: GroundTruth, truth2: GroundTruth) -> LabelledPair:
    """Label the ``(N1, 4)`` and ``(N2, 4)`` pixel xyxy boxes of two frames (the persons of a
    ``/compare`` answer, in its order) with their frames' labels."""
    boxes1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    visible1, visible2 = truth1.visible(MIN_VISIBILITY), truth2.visible(MIN_VISIBILITY)
    present = set(visible1.ids.tolist()) & set(visible2.ids.tolist())
    detected1, detected2 = assigned_identities(boxes1, visible1), assigned_identities(boxes2, visible2)
    (detections1, true1), (detections2, true2) = detection_counts(boxes1, truth1), detection_counts(boxes2, truth2)
    return LabelledPair(
        best1=best_identities(boxes1, truth1),
        best2=best_identities(boxes2, truth2),
        present=frozenset(present),
        detected=frozenset(present & set(detected1.tolist()) & set(detected2.tolist())),
        counts={
            "truth_persons": len(visible1.ids) + len(visible2.ids),
            "detected_persons": int((detected1 >= 0).sum() + (detected2 >= 0).sum()),
            "detections": detections1 + detections2,
            "true_detections": true1 + true2,
            "merged": merged_boxes(boxes1, truth1) + merged_boxes(boxes2, truth2),
        },
    )


def score_matches(labelled: LabelledPair, rows: np.ndarray, cols: np.ndarray) -> PairScore:
    """Score the matches of box ``rows[k]`` of the first frame with box ``cols[k]`` of the second.

    A match is right when both boxes' best-IoU identities (IoU >= 0.5, any visibility) agree,
    wrong when they differ or only one box is on a labelled person, and unscored when neither
    is. Recall is over every person at least half visible in both frames, detected or not;
    ``found_detected / detected`` is the recall over those the detector found in both.
    """
    pairs = list(zip(labelled.best1[rows].tolist(), labelled.best2[cols].tolist()))
    scored = [(a, b) for a, b in pairs if a >= 0 or b >= 0]
    right = {a for a, b in scored if a == b}
    return PairScore(
        matches=len(scored),
        correct=sum(1 for a, b in scored if a == b),
        unlabelled=len(pairs) - len(scored),
        present=len(labelled.present),
        found=len(right & labelled.present),
        detected=len(labelled.detected),
        found_detected=len(right & labelled.detected),
        **labelled.counts,
    )


def score_pair(response: CompareResponse, truth1: GroundTruth, truth2: GroundTruth) -> PairScore:
    """Score one ``/compare`` answer on two labelled frames, end to end (:func:`score_matches`)."""
    labelled = label_pair(
        np.array([p.bbox for p in response.image1_persons]),
        np.array([p.bbox for p in response.image2_persons]),
        truth1,
        truth2,
    )
    rows = np.array([m.image1_index for m in response.matches], dtype=np.int64)
    cols = np.array([m.image2_index for m in response.matches], dtype=np.int64)
    return score_matches(labelled, rows, cols)


def ratio(part: int, whole: int) -> float:
    """``part / whole``, 1 when there is nothing to count."""
    return part / whole if whole else 1.0


def f1(precision: float, recall: float) -> float:
    """The harmonic mean of precision and recall (0 when both are 0)."""
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def total(scores: list[PairScore]) -> dict[str, float]:
    """Micro-averaged figures over many pairs: end-to-end precision, recall and F1 of the
    matches, precision with the matches on no labelled person counted wrong (``strict``), the
    recall over persons detected in both frames, and the detector's recall (of visible
    persons), precision and share of boxes across two persons."""
    precision = ratio(sum(s.correct for s in scores), sum(s.matches for s in scores))
    matches = sum(s.matches + s.unlabelled for s in scores)
    recall = ratio(sum(s.found for s in scores), sum(s.present for s in scores))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1(precision, recall),
        "precision_strict": ratio(sum(s.correct for s in scores), matches),
        "recall_detected": ratio(sum(s.found_detected for s in scores), sum(s.detected for s in scores)),
        "detector_recall": ratio(sum(s.detected_persons for s in scores), sum(s.truth_persons for s in scores)),
        "detector_precision": ratio(sum(s.true_detections for s in scores), sum(s.detections for s in scores)),
        "merged_rate": ratio(sum(s.merged for s in scores), sum(s.detections for s in scores)),
        "pairs": len(scores),
        "present": sum(s.present for s in scores),
        "matches": sum(s.matches for s in scores),
        "unlabelled_matches": sum(s.unlabelled for s in scores),
    }


def frame_pairs(frames: list[int], spread: int = 4) -> list[tuple[int, int]]:
    """Pairs of frames to compare: up to ``spread`` frames evenly apart (first and last
    included), every pair of them."""
    picks = sorted({int(i) for i in np.linspace(0, len(frames) - 1, min(spread, len(frames))).round()})
    return [(frames[a], frames[b]) for k, a in enumerate(picks) for b in picks[k + 1 :]]


def whole_compares(pairs: list[tuple[Frame, Frame]], seen: set[Frame]) -> list[tuple[Frame, Frame]]:
    """Which of the frame ``pairs`` to run as whole compares so that every frame not ``seen`` is
    analysed once, the others made of their frames' persons: the pairs of two unseen frames
    first, then those of one (four frames, six pairs: two compares)."""
    seen = set(seen)
    chosen: list[tuple[Frame, Frame]] = []
    for unseen_needed in (2, 1):
        for pair in pairs:
            if sum(frame not in seen for frame in pair) >= unseen_needed:
                chosen.append(pair)
                seen.update(pair)
    return chosen
