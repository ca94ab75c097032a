"""Does enrolling a person from two cameras find them on a third camera more often than
enrolling them from one? Measured on labelled multi-camera crops with the service's own embedder
and the gallery's own best-view search.

    .venv/bin/python scripts/gallery_cameras.py --data /work/scratch/multicam/market1501-test \\
        --source "Market-1501 bounding_box_test via ..." --json docs/gallery-cameras.json

--data DIR  person crops named with person and camera, Market-1501 (0001_c1s1_001051_00.jpg) or
            DukeMTMC-reID (0001_c2_f0046182.jpg), in DIR or below it; persons 0 and -1
            (distractors and junk in Market-1501) are skipped. The crops are embedded as they
            are (no detection), by the default embedder of the local model store.

Protocol. A person is eligible with crops in at least 3 cameras. In each of --rounds rounds every
eligible person gets one trial: a held-out query camera C (a different one each round, in a
seeded order), an enrolment camera A (another camera with at least 2 crops) and a second camera
B (neither C nor A), with crops drawn at random from them (seeded). One gallery per round and
arm holds every eligible person, enrolled as
  (a) one_camera:             one view from A;
  (b) two_cameras:            that view plus one from B;
  (c) one_camera_two_views:   that view plus a second, different one from A,
and is searched with every crop of each person's camera C (the gallery's search: a person's
score is its best view's cosine similarity). Per query: rank-1, recall@5 (the person among the
5 best persons), found at the threshold (among those 5 with a similarity at or above the
service's default threshold), and a wrong best match at the threshold. (c) tells "two cameras"
from "two pictures". Differences between arms come with a 95% interval from a bootstrap over
persons (the same queries in every arm: paired).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid.config import Settings
from reid.core.images import read_rgb
from reid.evaluation.datasets import crop_name
from reid.gallery.store import Gallery
from reid.models.loading import StoredModels
from reid_devtools.reports import publish

ARMS = ("one_camera", "two_cameras", "one_camera_two_views")
TOP_K = 5  # the service's default top_k for /gallery/search
BOOTSTRAP = 2000
EMBED_CHUNK = 512


@dataclass(frozen=True)
class Crop:
    path: Path
    person: int
    camera: int


@dataclass(frozen=True)
class Trial:
    """One person's enrolment and queries in one round; crops by index."""

    person: int
    query_camera: int
    camera_a: int
    camera_b: int
    view_a: int
    second_a: int
    view_b: int
    queries: tuple[int, ...]

    def views(self, arm: str) -> list[tuple[int, int]]:
        """``(crop, camera)`` of the views enrolled in ``arm``, the first view first."""
        more = {
            "one_camera": [],
            "two_cameras": [(self.view_b, self.camera_b)],
            "one_camera_two_views": [(self.second_a, self.camera_a)],
        }[arm]
        return [(self.view_a, self.camera_a), *more]


def labelled_crops(folder: Path) -> list[Crop]:
    """The ``*.jpg`` crops under ``folder`` whose names carry a person (> 0) and a camera."""
    crops = []
    for path in sorted(folder.rglob("*.jpg")):
        if (name := crop_name(path.name)) and int(name[0]) > 0:
            person, camera = name
            crops.append(Crop(path, int(person), int(camera.removeprefix("c"))))
    return crops


def by_person(crops: list[Crop]) -> dict[int, dict[int, list[int]]]:
    """person -> camera -> crop indexes."""
    table: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, crop in enumerate(crops):
        table[crop.person][crop.camera].append(index)
    return table


def person_trials(
    person: int, cameras: dict[int, list[int]], rounds: int, rng: np.random.Generator
) -> list[Trial] | None:
    """One trial per round for a person, or None when a round has no camera A with 2 crops."""
    trials = []
    for query_camera in (int(c) for c in rng.permutation(sorted(cameras))[:rounds]):
        firsts = [c for c in sorted(cameras) if c != query_camera and len(cameras[c]) >= 2]
        if not firsts:
            return None
        camera_a = int(rng.choice(firsts))
        camera_b = int(rng.choice([c for c in sorted(cameras) if c not in (query_camera, camera_a)]))
        view_a, second_a = (int(i) for i in rng.choice(cameras[camera_a], 2, replace=False))
        view_b = int(rng.choice(cameras[camera_b]))
        queries = tuple(cameras[query_camera])
        trials.append(Trial(person, query_camera, camera_a, camera_b, view_a, second_a, view_b, queries))
    return trials


def draw_trials(
    table: dict[int, dict[int, list[int]]], rounds: int, max_persons: int, seed: int
) -> tuple[list[list[Trial]], int]:
    """The trials of each round (every round: the same persons), and how many persons had
    crops in at least 3 cameras."""
    rng = np.random.default_rng(seed)
    candidates = [p for p in sorted(table) if len(table[p]) >= 3]
    chosen = {}
    for person in candidates:
        trials = person_trials(person, table[person], rounds, rng)
        if trials is not None:
            chosen[person] = trials
    persons = sorted(chosen)
    if max_persons and len(persons) > max_persons:
        persons = sorted(int(p) for p in rng.choice(persons, max_persons, replace=False))
    return [[chosen[p][r] for p in persons] for r in range(rounds)], len(candidates)


def embed_used(crops: list[Crop], rounds: list[list[Trial]], embed) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` embeddings and ``(N, 2)`` sizes (w, h) of the crops, filled where a trial uses them."""
    used = sorted({i for trials in rounds for t in trials for i in (t.view_a, t.second_a, t.view_b, *t.queries)})
    embeddings, sizes = None, np.zeros((len(crops), 2), np.int64)
    for start in range(0, len(used), EMBED_CHUNK):
        chunk = used[start : start + EMBED_CHUNK]
        images = [read_rgb(crops[i].path) for i in chunk]
        vectors = embed(images)
        if embeddings is None:
            embeddings = np.zeros((len(crops), vectors.shape[1]), np.float32)
        embeddings[chunk] = vectors
        sizes[chunk] = [(image.shape[1], image.shape[0]) for image in images]
    assert embeddings is not None, "no crop to embed"
    return embeddings, sizes


def search_round(
    trials: list[Trial], arm: str, embeddings: np.ndarray, sizes: np.ndarray, model: str, threshold: float, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Enrol every trial's person as ``arm`` says in a fresh gallery, search with every query;
    ``(Q, 4)`` outcomes (rank-1, recall@5, found at the threshold, wrong best match at the
    threshold) and the ``(Q,)`` true persons."""
    gallery = Gallery(str(path), model)
    try:
        owners = {}
        for trial in trials:
            (first, camera), *more = trial.views(arm)
            box = [0, 0, *map(int, sizes[first])]
            stored = gallery.add(embeddings[first], box, label=str(trial.person), source=f"c{camera}")
            for crop, other in more:
                gallery.add_view(stored.person_id, embeddings[crop], [0, 0, *map(int, sizes[crop])], source=f"c{other}")
            owners[stored.person_id] = trial.person
        queries = [q for t in trials for q in t.queries]
        # Every person scored (no threshold), the TOP_K best kept; the threshold applied below.
        hits = gallery.search(embeddings[queries], TOP_K, -1.0)
    finally:
        gallery.close()
    truth = np.array([t.person for t in trials for _ in t.queries])
    outcomes = []
    for person, found in zip(truth, hits):
        ranked = [owners[hit.person_id] for hit in found]
        right = ranked[0] == person
        at_threshold = any(owners[h.person_id] == person and h.similarity >= threshold for h in found)
        outcomes.append((right, person in ranked, at_threshold, not right and found[0].similarity >= threshold))
    return np.array(outcomes, bool), truth


METRICS = ("rank1", "recall_at_5", "found_at_threshold", "wrong_best_at_threshold")


def summary(outcomes: np.ndarray, truth: np.ndarray) -> dict:
    figures = {name: round(float(outcomes[:, k].mean()), 4) for k, name in enumerate(METRICS)}
    return {**figures, "queries": len(truth), "persons": len(set(truth.tolist()))}


def paired_difference(x: np.ndarray, y: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> dict:
    """``x - y`` (query outcomes of one metric, same queries), and its 95% interval from a
    bootstrap over persons; with the queries only x got right and only y got right."""
    persons, owner = np.unique(truth, return_inverse=True)
    diff = np.bincount(owner, x.astype(float) - y.astype(float), len(persons))
    count = np.bincount(owner, minlength=len(persons)).astype(float)
    draws = rng.integers(0, len(persons), (BOOTSTRAP, len(persons)))
    resampled = diff[draws].sum(axis=1) / count[draws].sum(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {
        "difference": round(float(diff.sum() / count.sum()), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "only_first": int((x & ~y).sum()),
        "only_second": int((~x & y).sum()),
    }


def printed_table(arms: dict[str, dict], threshold: float) -> str:
    head = f"{'arm':<24}{'rank-1':>8}{'recall@5':>10}{f'found@{threshold:g}':>12}{f'wrong@{threshold:g}':>12}"
    lines = [head]
    for name, figures in arms.items():
        values = [figures[m] for m in METRICS]
        lines.append(f"{name:<24}{values[0]:>8.3f}{values[1]:>10.3f}{values[2]:>12.3f}{values[3]:>12.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="labelled person crops (Market-1501/Duke names)")
    parser.add_argument("--source", help="where the crops came from, for the report")
    parser.add_argument("--rounds", type=int, default=3, help="query cameras per person (at most 3)")
    parser.add_argument("--max-persons", type=int, default=0, help="a seeded subsample of persons (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds, 3))
    started = time.perf_counter()
    settings = Settings()
    models = StoredModels.open(settings, detector=False)
    threshold = models.threshold(settings)
    embedder = models.load_embedder(settings)
    crops = labelled_crops(args.data)
    persons = by_person(crops)
    trials, with_three = draw_trials(persons, rounds, args.max_persons, args.seed)
    if not trials[0]:
        parser.error(f"no person in {args.data} has crops in 3 cameras (and 2 crops in one of them)")
    embeddings, sizes = embed_used(crops, trials, embedder.embed)
    embedded_s = time.perf_counter() - started
    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory(prefix="reid-gallery-cameras-") as folder:
        for number, round_trials in enumerate(trials):
            for arm in ARMS:
                path = Path(folder) / f"round{number}-{arm}.sqlite3"
                results[arm].append(
                    search_round(round_trials, arm, embeddings, sizes, models.tags.embedder, threshold, path)
                )
    outcomes = {arm: np.concatenate([o for o, _ in parts]) for arm, parts in results.items()}
    truth = np.concatenate([t for _, t in results[ARMS[0]]])
    rng = np.random.default_rng(args.seed + 1)
    pairs = {
        "two_cameras - one_camera": ("two_cameras", "one_camera"),
        "two_cameras - one_camera_two_views": ("two_cameras", "one_camera_two_views"),
        "one_camera_two_views - one_camera": ("one_camera_two_views", "one_camera"),
    }
    arms = {arm: summary(outcomes[arm], truth) for arm in ARMS}
    report = {
        "question": "does enrolling a person from two cameras find them on a third camera more often than one?",
        "command": shlex.join(["python", "scripts/gallery_cameras.py", *(sys.argv[1:] if argv is None else argv)]),
        "data": {
            "folder": str(args.data),
            "source": args.source,
            "crops": len(crops),
            "persons": len(persons),
            "cameras": sorted({c.camera for c in crops}),
            "persons_in_3_cameras": with_three,
            "persons_used": len(trials[0]),
            "subsampled": bool(args.max_persons) and len(trials[0]) == args.max_persons,
        },
        "seed": args.seed,
        "rounds": rounds,
        "models": {"embedder": models.tags.embedder},
        "threshold": threshold,
        "threshold_from": "the embedder's calibration" if settings.threshold is None else "REID_THRESHOLD",
        "search": "reid.gallery.store.Gallery (temporary SQLite file per round and arm): best view per person, "
        f"top {TOP_K}",
        "arms": arms,
        "differences": {
            name: {
                metric: paired_difference(outcomes[x][:, k], outcomes[y][:, k], truth, rng)
                for k, metric in enumerate(METRICS)
            }
            for name, (x, y) in pairs.items()
        },
        "seconds": {"load_and_embed": round(embedded_s, 1), "total": round(time.perf_counter() - started, 1)},
    }
    print(printed_table(arms, threshold))
    publish(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
