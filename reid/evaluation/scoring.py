"""Scoring answers against ground truth: detections to labelled boxes, matches to identities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid.core.boxes import box_iou
from reid.core.matching import match
from reid.evaluation.datasets import GroundTruth
from reid.schemas import CompareResponse, GroupResponse

MIN_IOU = 0.5
MIN_VISIBILITY = 0.5
# A box overlapping two labelled persons at least this much (IoU) each is one box across two people.
MERGED_IOU = 0.3


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


def score_pair(response: CompareResponse, truth1: GroundTruth, truth2: GroundTruth) -> PairScore:
    """Score one ``/compare`` answer on two labelled frames, end to end.

    A match is right when both boxes' best-IoU identities (IoU >= 0.5, any visibility) agree,
    wrong when they differ or only one box is on a labelled person, and unscored when neither
    is. Recall is over every person at least half visible in both frames, detected or not;
    ``found_detected / detected`` is the recall over those the detector found in both.
    """
    boxes1 = np.array([p.bbox for p in response.image1_persons], dtype=np.float64).reshape(-1, 4)
    boxes2 = np.array([p.bbox for p in response.image2_persons], dtype=np.float64).reshape(-1, 4)
    best1, best2 = best_identities(boxes1, truth1), best_identities(boxes2, truth2)
    pairs = [(best1[m.image1_index], best2[m.image2_index]) for m in response.matches]
    scored = [(a, b) for a, b in pairs if a >= 0 or b >= 0]
    right = {a for a, b in scored if a == b}
    visible1, visible2 = truth1.visible(MIN_VISIBILITY), truth2.visible(MIN_VISIBILITY)
    present = set(visible1.ids.tolist()) & set(visible2.ids.tolist())
    detected1, detected2 = assigned_identities(boxes1, visible1), assigned_identities(boxes2, visible2)
    detected = present & set(detected1.tolist()) & set(detected2.tolist())
    (detections1, true1), (detections2, true2) = detection_counts(boxes1, truth1), detection_counts(boxes2, truth2)
    return PairScore(
        matches=len(scored),
        correct=sum(1 for a, b in scored if a == b),
        unlabelled=len(pairs) - len(scored),
        present=len(present),
        found=len(right & present),
        detected=len(detected),
        found_detected=len(right & detected),
        truth_persons=len(visible1.ids) + len(visible2.ids),
        detected_persons=int((detected1 >= 0).sum() + (detected2 >= 0).sum()),
        detections=detections1 + detections2,
        true_detections=true1 + true2,
        merged=merged_boxes(boxes1, truth1) + merged_boxes(boxes2, truth2),
    )


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


@dataclass(frozen=True)
class GroupScore:
    """Counts of the "same person" relation over all person pairs of one grouped set of frames."""

    linked: int  # pairs of persons of different images put in one identity, at least one box on a labelled person
    correct: int  # of those, both boxes on the same labelled person
    present: int  # pairs (frame a, frame b) of one labelled person at least half visible in both
    found: int  # of those, linked (a person the detector missed is a miss)


def score_group(answer: GroupResponse, truths: list[GroundTruth]) -> GroupScore:
    """Score one ``/group`` answer on its labelled frames (``truths`` in upload order), end to end.

    A linked pair is right when both boxes' best-IoU identities (IoU >= 0.5) agree, wrong when
    they differ or only one box is on a labelled person, unscored when neither is. Recall is over
    every pair of frames in which a labelled person is at least half visible in both.
    """
    best, assigned = [], []
    for image, truth in zip(answer.images, truths, strict=True):
        boxes = np.array([p.bbox for p in image.persons], dtype=np.float64).reshape(-1, 4)
        best.append(best_identities(boxes, truth))
        assigned.append(assigned_identities(boxes, truth.visible(MIN_VISIBILITY)))
    linked = correct = 0
    found: set[tuple[int, int, int]] = set()  # (labelled id, image a, image b)
    for identity in answer.identities:
        for k, first in enumerate(identity.members):
            for second in identity.members[k + 1 :]:
                a = best[first.image_index][first.person_index]
                b = best[second.image_index][second.person_index]
                if a < 0 and b < 0:
                    continue
                linked += 1
                correct += int(a == b)
                same = assigned[first.image_index][first.person_index]
                if same >= 0 and same == assigned[second.image_index][second.person_index]:
                    found.add((int(same), first.image_index, second.image_index))
    visible = [set(truth.visible(MIN_VISIBILITY).ids.tolist()) for truth in truths]
    present = sum(len(visible[a] & visible[b]) for a in range(len(truths)) for b in range(a + 1, len(truths)))
    return GroupScore(linked=linked, correct=correct, present=present, found=len(found))


def group_total(scores: list[GroupScore]) -> dict[str, float]:
    """Micro-averaged pairwise precision, recall and F1 over many groups."""
    present = sum(s.present for s in scores)
    precision = ratio(sum(s.correct for s in scores), sum(s.linked for s in scores))
    recall = ratio(sum(s.found for s in scores), present)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1(precision, recall),
        "groups": len(scores),
        "present": present,
    }


def frame_pairs(frames: list[int], spread: int = 4) -> list[tuple[int, int]]:
    """Pairs of frames to compare: up to ``spread`` frames evenly apart (first and last
    included), every pair of them."""
    picks = sorted({int(i) for i in np.linspace(0, len(frames) - 1, min(spread, len(frames))).round()})
    return [(frames[a], frames[b]) for k, a in enumerate(picks) for b in picks[k + 1 :]]


@dataclass(frozen=True)
class Episode:
    """Two simulated images of crops from two cameras: some persons in both, some in one."""

    first: np.ndarray  # (n1,) indices of crops seen by one camera
    second: np.ndarray  # (n2,) indices of crops seen by another camera


def compare_episodes(
    ids: np.ndarray, cams: np.ndarray, count: int = 1000, most_shared: int = 8, most_alone: int = 4, seed: int = 0
) -> list[Episode]:
    """Random compares built from labelled crops, as the service sees them: two cameras, 1 to
    ``most_shared`` persons in both images and 0 to ``most_alone`` more in each image alone,
    one crop per person, persons of a crop set never repeated within an image."""
    rng = np.random.default_rng(seed)
    cameras = np.unique(cams)
    by_camera = {
        cam: {person: np.flatnonzero((ids == person) & (cams == cam)) for person in np.unique(ids[cams == cam])}
        for cam in cameras
    }
    episodes: list[Episode] = []
    while len(episodes) < count:
        cam1, cam2 = rng.choice(cameras, 2, replace=False)
        both = sorted(set(by_camera[cam1]) & set(by_camera[cam2]))
        if not both:
            continue
        people = rng.permutation(both)
        shared = people[: rng.integers(1, min(most_shared, len(people)) + 1)]
        rest = [p for p in people if p not in set(shared)]
        alone1 = rest[: rng.integers(0, most_alone + 1)]
        alone2 = rest[len(alone1) : len(alone1) + rng.integers(0, most_alone + 1)]

        def pick(persons, cam) -> np.ndarray:
            return np.array([rng.choice(by_camera[cam][p]) for p in persons], dtype=np.int64)

        episodes.append(Episode(pick([*shared, *alone1], cam1), pick([*shared, *alone2], cam2)))
    return episodes


def episode_curves(
    similarity: np.ndarray, ids: np.ndarray, episodes: list[Episode], thresholds: np.ndarray
) -> dict[str, np.ndarray]:
    """Match precision, recall and F1 of one-to-one matching (as ``/compare`` does) over the
    episodes, each ``(T,)`` for the ``(T,)`` thresholds: a match is right when both crops show
    the same person; every person in both images should be matched. ``similarity`` is
    ``(N, N)`` over all crops."""
    counts = np.zeros((len(thresholds), 3))  # right, wrong, persons in both
    for episode in episodes:
        block = similarity[np.ix_(episode.first, episode.second)]
        same = ids[episode.first][:, None] == ids[episode.second][None, :]
        for k, threshold in enumerate(thresholds):
            pairs = match(block, float(threshold))
            hits = int(same[pairs.rows, pairs.cols].sum())
            counts[k] += (hits, len(pairs.rows) - hits, int(same.sum()))
    right, wrong, present = counts.T
    return curves(right, right + wrong, present)


def curves(right: np.ndarray, matches: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 from counts of right matches, all matches and persons to match."""
    precision = np.divide(right, matches, out=np.ones_like(right, dtype=np.float64), where=matches > 0)
    recall = np.divide(right, present, out=np.ones_like(right, dtype=np.float64), where=present > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    return {"precision": precision, "recall": recall, "f1": f1}


def threshold_for_precision(thresholds: np.ndarray, precision: np.ndarray, target: float) -> float:
    """The lowest of the ascending ``thresholds`` from which on ``precision`` stays at least
    ``target``: the most matches at that share of right ones. The highest threshold when none
    reaches it."""
    below = np.flatnonzero(precision < target)
    if len(below) == 0:
        return float(thresholds[0])
    return float(thresholds[min(below[-1] + 1, len(thresholds) - 1)])
