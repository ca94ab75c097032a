"""Grouping, measured on labelled scenes: each sequence's frames are one group.

Pairwise precision, recall and F1 of the "same person" relation over all person pairs of each
group, end to end (a person the detector missed is a miss; see reid.evaluation.groups), for
the service's grouping and for the plain transitive closure of the pairwise /compare matches,
at the default threshold or the given ones.

    .venv/bin/python scripts/evaluate_group.py --scenes ../shared/data/two-camera-hall \\
        --scenes ../shared/data/mot17 --json docs/eval-group.json
    .venv/bin/python scripts/evaluate_group.py --scenes ../shared/data/mot17 --url http://127.0.0.1:3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from reid.config import Settings
from reid.core.grouping import ordered_identities, pair_links
from reid.core.images import read_rgb
from reid.core.pipeline import build_group_response, response_from_identities
from reid.evaluation.datasets import MotSequence, mot_sequences
from reid.evaluation.groups import group_total, score_group
from reid.schemas import GroupResponse


def transitive_closure(embeddings: list[np.ndarray], threshold: float) -> list[np.ndarray]:
    """Per image, the cluster of each person when every pairwise match links (no constraint):
    the baseline the service's grouping is measured against."""
    sizes = [len(e) for e in embeddings]
    links = pair_links(embeddings, threshold)
    count = sum(sizes)
    graph = coo_matrix((np.ones(len(links)), (links[:, 0].astype(int), links[:, 1].astype(int))), (count, count))
    _, labels = connected_components(graph, directed=False)
    return np.split(labels, np.cumsum(sizes)[:-1])


async def local_groups(groups: list[MotSequence], settings: Settings, thresholds: list[float]) -> dict:
    from reid.assembly import LocalReID

    local = LocalReID(settings)
    pipeline = local.pipeline
    thresholds = thresholds or [pipeline.threshold]
    scores: dict[str, dict[float, list]] = {
        "service": {t: [] for t in thresholds},
        "closure": {t: [] for t in thresholds},
    }
    seconds = []
    for seq in tqdm(groups, desc="groups", leave=False):
        frames = seq.frame_numbers()
        images = [read_rgb(seq.frames[f]) for f in frames]
        truths = [seq.truth[f] for f in frames]
        started = time.perf_counter()
        persons = await pipeline.persons(images)
        sizes = [(image.shape[1], image.shape[0]) for image in images]
        for threshold in thresholds:
            answer = build_group_response(persons, sizes, threshold, pipeline.rules.max_persons, pipeline.models)
            if threshold == thresholds[0]:
                seconds.append(time.perf_counter() - started)
            scores["service"][threshold].append(score_group(answer, truths))
            closure = ordered_identities(transitive_closure([p.embeddings for p in persons], threshold))
            closed = response_from_identities(
                persons, sizes, closure, threshold, answer.max_persons_matched, answer.models
            )
            scores["closure"][threshold].append(score_group(closed, truths))
    return {
        "models": pipeline.models.model_dump(),
        "default_threshold": pipeline.threshold,
        "methods": {method: {f"{t:.2f}": group_total(per[t]) for t in thresholds} for method, per in scores.items()},
        "median_s_per_group": float(np.median(seconds)),
        "images_per_group": [len(seq.frames) for seq in groups],
    }


def remote_groups(groups: list[MotSequence], url: str, threshold: float | None) -> dict:
    import httpx

    scores = []
    for seq in tqdm(groups, desc="groups via HTTP", leave=False):
        frames = seq.frame_numbers()
        files = [("images", seq.frames[f].open("rb")) for f in frames]
        data = {} if threshold is None else {"threshold": str(threshold)}
        response = httpx.post(f"{url}/group", files=files, data=data, timeout=300)
        response.raise_for_status()
        scores.append(score_group(GroupResponse.model_validate(response.json()), [seq.truth[f] for f in frames]))
    return {"methods": {"service": {"default" if threshold is None else f"{threshold:.2f}": group_total(scores)}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, action="append", required=True, help="MOT-style sequences folder")
    parser.add_argument("--threshold", type=float, action="append", default=[], help="default: the embedder's")
    parser.add_argument("--url", help="measure a running service over HTTP instead of in process")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {}
    for folder in args.scenes:
        groups = mot_sequences(folder)
        if args.url:
            results[folder.name] = remote_groups(groups, args.url, args.threshold[0] if args.threshold else None)
        else:
            results[folder.name] = asyncio.run(local_groups(groups, Settings(), args.threshold))
    print("| scenes | method | threshold | groups | pairs present | P | R | F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        for method, per in result["methods"].items():
            for threshold, m in per.items():
                row = [
                    name,
                    method,
                    threshold,
                    m["groups"],
                    m["present"],
                    *(f"{m[k]:.3f}" for k in ("precision", "recall", "f1")),
                ]
                print("| " + " | ".join(str(v) for v in row) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
