"""Scoring match thresholds, for calibrating the default one: simulated ``/compare`` episodes of
labelled crops from two cameras, precision, recall and F1 of one-to-one matching per threshold,
and the lowest threshold that holds a target precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid.core.matching import match


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
