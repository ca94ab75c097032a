"""Measure matching quality on labelled data, through the same code path as POST /compare.

    python scripts/evaluate.py --crops ../shared/data/pku-reid-val --crops ../shared/data/duke-crops \\
        --scenes ../shared/data/mot17 --scenes ../shared/data/two-camera-hall --json eval.json

--crops DIR    labelled person crops in DIR/query and DIR/gallery: rank-1, rank-5 and mAP
               (standard protocol), and milliseconds per crop of the embedder
--scenes DIR   MOT-style sequences: frame pairs through the whole compare pipeline; match
               precision, recall, F1 and detector recall
--url URL      run the scenes against a running server instead (crops always run in process)
--grid K=V,V   evaluate every combination of settings (e.g. embedder_model=a,b embed_flip=false,true)
--set K=V      one setting for every run
--calibrate    choose the threshold maximising pair F1 on all labelled pairs; write it to
               reid/calibration.json and the embedder's store metadata
--plot FILE    histograms of same- and different-identity similarities, threshold marked
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.config import Settings  # noqa: E402
from reid.datasets import CropSet, MotSequence, load_crop_set, mot_sequences  # noqa: E402
from reid.evaluation import (  # noqa: E402
    best_identities,
    best_pair_threshold,
    frame_pairs,
    labelled_similarities,
    pair_f1,
    retrieval_metrics,
    score_pair,
    total,
)
from reid.images import decode_image  # noqa: E402
from reid.matching import cosine_similarity  # noqa: E402
from reid.pipeline import PairAnalysis, build_response  # noqa: E402
from reid.schemas import CompareResponse  # noqa: E402


def read_rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), field=path.name, max_bytes=1 << 30, max_pixels=1 << 30)


def evaluate_crops(crop_set: CropSet, embed) -> tuple[dict, np.ndarray, np.ndarray]:
    """Retrieval metrics, timing, and the same/different similarity samples of one crop set."""
    crops = crop_set.query + crop_set.gallery
    images = [read_rgb(c.path) for c in tqdm(crops, desc=f"{crop_set.name}: reading", leave=False)]
    embed(images[:4])  # warm
    started = time.perf_counter()
    embeddings = embed(images)
    ms_per_crop = (time.perf_counter() - started) * 1000 / len(images)
    query, gallery = embeddings[: len(crop_set.query)], embeddings[len(crop_set.query) :]
    ids = np.array([c.identity for c in crops])
    cams = np.array([c.camera for c in crops])
    q, g = slice(0, len(crop_set.query)), slice(len(crop_set.query), None)
    similarity = cosine_similarity(query, gallery)
    metrics = retrieval_metrics(similarity, ids[q], cams[q], ids[g], cams[g])
    # Pairs for calibration: across cameras only, as the protocol scores them.
    valid = ids[q][:, None] != ids[g][None, :]
    valid |= cams[q][:, None] != cams[g][None, :]
    same = similarity[valid & (ids[q][:, None] == ids[g][None, :])]
    different = similarity[valid & (ids[q][:, None] != ids[g][None, :])]
    return {**metrics, "ms_per_crop": ms_per_crop}, same, different


def scene_jobs(root: Path) -> list[tuple[MotSequence, int, int]]:
    return [(seq, a, b) for seq in mot_sequences(root) for a, b in frame_pairs(seq.frame_numbers())]


async def analyse_scenes(jobs, local) -> list[PairAnalysis]:
    return [
        await local.analyse(read_rgb(seq.frames[a]), read_rgb(seq.frames[b]))
        for seq, a, b in tqdm(jobs, desc="scenes", leave=False)
    ]


def remote_responses(jobs, url: str, threshold: float | None) -> list[CompareResponse]:
    import httpx

    answers = []
    for seq, a, b in tqdm(jobs, desc="scenes via HTTP", leave=False):
        files = {"image1": seq.frames[a].open("rb"), "image2": seq.frames[b].open("rb")}
        data = {} if threshold is None else {"threshold": str(threshold)}
        response = httpx.post(f"{url}/compare", files=files, data=data, timeout=120)
        response.raise_for_status()
        answers.append(CompareResponse.model_validate(response.json()))
    return answers


def scene_similarities(jobs, analyses: list[PairAnalysis]) -> tuple[np.ndarray, np.ndarray]:
    same, different = [], []
    for (seq, a, b), analysis in zip(jobs, analyses):
        first, second = analysis.persons
        ids1 = best_identities(first.boxes, seq.truth[a])
        ids2 = best_identities(second.boxes, seq.truth[b])
        s, d = labelled_similarities(analysis.similarity, ids1, ids2)
        same.append(s)
        different.append(d)
    return np.concatenate(same), np.concatenate(different)


def parse_settings(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def variants(grid: list[str], fixed: dict[str, str]) -> list[dict[str, str]]:
    axes = [(key, values.split(",")) for key, values in (item.split("=", 1) for item in grid)]
    combos = itertools.product(*(values for _, values in axes))
    return [{**fixed, **dict(zip((key for key, _ in axes), combo))} for combo in combos]


def run_variant(overrides: dict[str, str], args) -> dict:
    from reid.runtime import LocalReID

    settings = Settings(**overrides)
    local = LocalReID(settings)
    threshold = local.threshold if args.threshold is None else args.threshold
    result = {
        "settings": overrides,
        "embedder": local.models.embedder,
        "threshold": threshold,
        "crops": {},
        "scenes": {},
    }
    same, different = [], []
    for folder in args.crops:
        metrics, s, d = evaluate_crops(load_crop_set(folder), local.embedder.embed)
        result["crops"][folder.name] = metrics
        same.append(s)
        different.append(d)
    for folder in args.scenes:
        jobs = scene_jobs(folder)
        if args.url:
            answers = remote_responses(jobs, args.url, args.threshold)
        else:
            analyses = asyncio.run(analyse_scenes(jobs, local))
            answers = [build_response(a, threshold, local.models) for a in analyses]
            s, d = scene_similarities(jobs, analyses)
            same.append(s)
            different.append(d)
        scores = [score_pair(ans, seq.truth[a], seq.truth[b]) for (seq, a, b), ans in zip(jobs, answers)]
        result["scenes"][folder.name] = total(scores)
    if same:
        same_all, different_all = np.concatenate(same), np.concatenate(different)
        best, best_f1 = best_pair_threshold(same_all, different_all)
        result["pairs"] = {
            "same": len(same_all),
            "different": len(different_all),
            "pair_f1": pair_f1(same_all, different_all, threshold),
            "best_threshold": best,
            "best_pair_f1": best_f1,
        }
        result["_samples"] = (same_all, different_all)
    return result


def markdown(results: list[dict]) -> str:
    head = ["variant", "threshold"]
    rows = []
    for result in results:
        row = {
            "variant": " ".join(f"{k}={v}" for k, v in result["settings"].items()) or "default",
            "threshold": f"{result['threshold']:.2f}",
        }
        for name, m in result["crops"].items():
            row[f"{name} rank-1"] = f"{m['rank1']:.3f}"
            row[f"{name} mAP"] = f"{m['mAP']:.3f}"
        if result["crops"]:
            row["ms/crop"] = f"{np.mean([m['ms_per_crop'] for m in result['crops'].values()]):.2f}"
        for name, m in result["scenes"].items():
            row[f"{name} P"] = f"{m['precision']:.3f}"
            row[f"{name} R"] = f"{m['recall']:.3f}"
            row[f"{name} F1"] = f"{m['f1']:.3f}"
            row[f"{name} det. recall"] = f"{m['detector_recall']:.3f}"
        if "pairs" in result:
            row["pair F1"] = f"{result['pairs']['pair_f1']:.3f}"
            row["best threshold"] = f"{result['pairs']['best_threshold']:.2f}"
        rows.append(row)
        head += [k for k in row if k not in head]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.get(k, "") for k in head) + " |" for row in rows]
    return "\n".join(lines)


def plot(path: Path, same: np.ndarray, different: np.ndarray, threshold: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    bins = np.linspace(-0.2, 1.0, 61)
    axes.hist(different, bins=bins, alpha=0.6, density=True, label=f"different identity ({len(different)})")
    axes.hist(same, bins=bins, alpha=0.6, density=True, label=f"same identity ({len(same)})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    axes.set_xlabel("cosine similarity")
    axes.set_ylabel("density")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def calibrate(result: dict) -> None:
    """Record the calibrated threshold for this embedder: calibration.json and the store."""
    import bentoml

    from reid.sources import CALIBRATION_FILE

    model = bentoml.models.get(result["embedder"])
    spec = model.info.metadata["spec"]
    threshold = result["pairs"]["best_threshold"]
    table = json.loads(CALIBRATION_FILE.read_text())
    table[Path(spec["weights"]).stem] = {
        "threshold": threshold,
        "pair_f1": round(result["pairs"]["best_pair_f1"], 4),
        "same_pairs": result["pairs"]["same"],
        "different_pairs": result["pairs"]["different"],
        "data": sorted([*result["crops"], *result["scenes"]]),
    }
    CALIBRATION_FILE.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    model.info.metadata["spec"] = {**spec, "threshold": threshold}
    model.flush()
    print(f"calibrated {model.tag}: threshold {threshold:.2f} (pair F1 {result['pairs']['best_pair_f1']:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, action="append", default=[])
    parser.add_argument("--scenes", type=Path, action="append", default=[])
    parser.add_argument("--url")
    parser.add_argument("--threshold", type=float, help="override every variant's default threshold")
    parser.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args(argv)
    if not args.crops and not args.scenes:
        parser.error("give --crops and/or --scenes")

    results = [run_variant(overrides, args) for overrides in variants(args.grid, parse_settings(args.fixed))]
    print(markdown(results))
    first = results[0]
    if args.calibrate:
        if len(results) != 1 or "pairs" not in first:
            parser.error("--calibrate takes one variant and in-process data")
        calibrate(first)
    if args.plot and "_samples" in first:
        same, different = first["_samples"]
        threshold = first["pairs"]["best_threshold"] if args.calibrate else first["threshold"]
        plot(args.plot, same, different, threshold, first["embedder"])
    if args.json:
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        args.json.write_text(json.dumps({"variants": clean}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
