"""Scoring ``/group`` answers on labelled frames: pairwise precision, recall and F1 of the
"same person" relation over all person pairs of a group, and over many groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid.evaluation.datasets import GroundTruth
from reid.evaluation.frames import MIN_VISIBILITY, assigned_identities, best_identities, f1, ratio
from reid.schemas import GroupResponse


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
