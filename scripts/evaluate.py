"""Measure matching quality on labelled data, through the same code path as POST /compare.

    python scripts/evaluate.py --crops ../shared/data/cuhk03-pair1 --crops ../shared/data/pku-reid-val \\
        --scenes ../shared/data/mot17 --scenes ../shared/data/two-camera-hall --json eval.json

--crops DIR      labelled person crops in DIR/query and DIR/gallery: rank-1, rank-5 and mAP
                 (standard protocol), match F1 of simulated two-camera compares, ms per crop
--scenes DIR     MOT-style sequences: frame pairs through the whole pipeline; end-to-end match
                 precision, recall (a person the detector missed is a miss) and F1, the recall
                 over persons detected in both frames, detector recall and precision, ms per compare
--kinds SHARED   the scene benchmark built from SHARED's data (reid.evaluation.kinds): street,
                 indoor, crowded-frontal, small-distant, each end to end; the worst kind is the headline
--kind NAME=DIR  one more kind: MOT-style sequences in DIR (DIR,DIR... for several folders), or
                 NAME=views:DIR for labelled photos, each paired with a synthetic second view
--url URL        run the scenes against a running server instead (crops always run in process)
--grid K=V,V     evaluate every combination of settings (e.g. embedder_model=a,b containment=0,0.8)
--set K=V        one setting for every run
--calibrate DIR  choose the lowest threshold at which DIR's (a --crops set) simulated two-camera
                 compares are matched with a precision of at least 0.95, report every figure at
                 it, and record it in reid/models/calibration.json and the embedder's store metadata
--plot FILE      match F1 against the threshold, one curve per data set, threshold marked
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reid.config import Settings
from reid.core.images import read_rgb
from reid.core.matching import cosine_similarity, match
from reid.core.pipeline import PairAnalysis, Persons, build_response, pair_analysis
from reid.evaluation.calibration import compare_episodes, episode_curves, threshold_for_precision
from reid.evaluation.datasets import CropSet, MotSequence, load_crop_set, mot_sequences
from reid.evaluation.frames import frame_pairs, label_pair, score_matches, score_pair, total, whole_compares
from reid.evaluation.kinds import build_kinds, parse_kind
from reid.evaluation.retrieval import retrieval_metrics
from reid.schemas import CompareResponse

THRESHOLDS = np.round(np.arange(0.0, 1.0 + 1e-9, 0.01), 2)
# Matches the service returns should be right at least this often (--calibrate).
PRECISION_TARGET = 0.95


def evaluate_crops(crop_set: CropSet, embed) -> tuple[dict, np.ndarray]:
    """Retrieval metrics and timing of one crop set, and its match F1 per threshold."""
    crops = crop_set.query + crop_set.gallery
    images = [read_rgb(c.path) for c in tqdm(crops, desc=f"{crop_set.name}: reading", leave=False)]
    embed(images[:8])  # warm
    started = time.perf_counter()
    embeddings = embed(images)
    ms_per_crop = (time.perf_counter() - started) * 1000 / len(images)
    ids = np.array([c.identity for c in crops])
    cams = np.array([c.camera for c in crops])
    q, g = slice(0, len(crop_set.query)), slice(len(crop_set.query), None)
    metrics = retrieval_metrics(cosine_similarity(embeddings[q], embeddings[g]), ids[q], cams[q], ids[g], cams[g])
    curve = episode_curves(cosine_similarity(embeddings, embeddings), ids, compare_episodes(ids, cams), THRESHOLDS)
    return {**metrics, "ms_per_crop": ms_per_crop}, curve


def scene_jobs(roots: list[Path]) -> list[tuple[MotSequence, int, int]]:
    sequences = [seq for root in roots for seq in mot_sequences(root)]
    return [(seq, a, b) for seq in sequences for a, b in frame_pairs(seq.frame_numbers())]


@dataclass
class SceneMemo:
    """What one variant found in the frames of its scene sets, by real path: the kinds share
    their frames with the scene sets (street and the mall are MOT17's sequences, the hall is
    indoor's), and each frame is analysed once per variant."""

    persons: dict[Path, tuple[Persons, tuple[int, int]]] = field(default_factory=dict)  # and its (width, height)
    seconds: dict[tuple[Path, Path], float] = field(default_factory=dict)  # of the pairs run as whole compares


async def analyse_scenes(jobs, pipeline, memo: SceneMemo) -> tuple[list[PairAnalysis], float]:
    """The analyses of every frame pair, and the median milliseconds a whole compare took
    (decoding not counted).

    Only :func:`whole_compares` run through the pipeline, timed; every other pair is made of the
    persons those found in its two frames (``memo``, read and added to), as a compare would find
    them: each image's persons are its own (a frame's detections never depend on the other image)."""
    pairs = [(seq.frames[a].resolve(), seq.frames[b].resolve()) for seq, a, b in jobs]
    for pair in tqdm(whole_compares(pairs, set(memo.persons)), desc="scenes", leave=False):
        images = read_rgb(pair[0]), read_rgb(pair[1])
        started = time.perf_counter()
        analysis = await pipeline.analyse(*images)
        memo.seconds[pair] = time.perf_counter() - started
        for frame, found, size in zip(pair, analysis.persons, analysis.sizes):
            memo.persons.setdefault(frame, (found, size))
    analyses = []
    for pair in pairs:
        (first, size1), (second, size2) = (memo.persons[frame] for frame in pair)
        analyses.append(pair_analysis(first, second, [size1, size2], pipeline.rules.max_persons))
    timed = [memo.seconds[pair] for pair in pairs if pair in memo.seconds]
    return analyses, float(np.median(timed) * 1000)


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


def scene_figures(jobs, answers: list[CompareResponse]) -> dict:
    return total([score_pair(answer, seq.truth[a], seq.truth[b]) for (seq, a, b), answer in zip(jobs, answers)])


def parse_settings(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def variants(grid: list[str], fixed: dict[str, str]) -> list[dict[str, str]]:
    axes = [(key, values.split(",")) for key, values in (item.split("=", 1) for item in grid)]
    combos = itertools.product(*(values for _, values in axes))
    return [{**fixed, **dict(zip((key for key, _ in axes), combo))} for combo in combos]


def at(curve: np.ndarray, threshold: float) -> float:
    return float(curve[int(np.abs(THRESHOLDS - threshold).argmin())])


def scene_curves(jobs, analyses: list[PairAnalysis]) -> dict[str, np.ndarray]:
    """Precision, recall and F1 at every threshold: each pair labelled once, then matched as
    ``build_response`` matches it."""
    labelled = [
        label_pair(analysis.persons[0].boxes, analysis.persons[1].boxes, seq.truth[a], seq.truth[b])
        for (seq, a, b), analysis in zip(jobs, analyses)
    ]
    per_threshold = []
    for threshold in THRESHOLDS:
        assignments = [match(analysis.similarity, threshold) for analysis in analyses]
        per_threshold.append(total([score_matches(lp, m.rows, m.cols) for lp, m in zip(labelled, assignments)]))
    return {key: np.array([figures[key] for figures in per_threshold]) for key in ("precision", "recall", "f1")}


def run_variant(overrides: dict[str, str], args) -> dict:
    from reid.assembly import LocalReID

    local = LocalReID(Settings(**overrides))
    pipeline = local.pipeline
    crops, curves = {}, {}
    for folder in args.crops:
        crops[folder.name], curves[folder.name] = evaluate_crops(load_crop_set(folder), local.embedder.embed)
    threshold = pipeline.threshold if args.threshold is None else args.threshold
    calibration = None
    if args.calibrate:
        curve = curves[args.calibrate.name]
        threshold = threshold_for_precision(THRESHOLDS, curve["precision"], PRECISION_TARGET)
        calibration = {
            "data": args.calibrate.name,
            "precision_target": PRECISION_TARGET,
            **{f"match_{key}": round(at(values, threshold), 4) for key, values in curve.items()},
        }
    for name, curve in curves.items():
        crops[name].update({f"match_{key}": at(values, threshold) for key, values in curve.items()})
    scenes, memo = {}, SceneMemo()
    for name, roots in args.scene_sets.items():
        jobs = scene_jobs(roots)
        if args.url:
            scenes[name] = scene_figures(jobs, remote_responses(jobs, args.url, args.threshold))
            continue
        analyses, ms = asyncio.run(analyse_scenes(jobs, pipeline, memo))
        scenes[name] = {
            **scene_figures(jobs, [build_response(a, threshold, pipeline.models) for a in analyses]),
            "ms_per_compare": ms,
        }
        curves[name] = scene_curves(jobs, analyses)
    kinds = {name: scenes[name]["f1"] for name in args.kind_names}
    return {
        "settings": overrides,
        "models": pipeline.models.model_dump(),
        "threshold": threshold,
        "calibration": calibration,
        "crops": crops,
        "scenes": scenes,
        "worst_kind": min(kinds, key=kinds.__getitem__) if kinds else None,
        "curves": {
            name: {key: [round(float(v), 4) for v in values] for key, values in curve.items()}
            for name, curve in curves.items()
        },
    }


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
            row[f"{name} F1"] = f"{m['match_f1']:.3f}"
        if result["crops"]:
            row["ms/crop"] = f"{np.mean([m['ms_per_crop'] for m in result['crops'].values()]):.1f}"
        for name, m in result["scenes"].items():
            row[f"{name} P"] = f"{m['precision']:.3f}"
            row[f"{name} R"] = f"{m['recall']:.3f}"
            row[f"{name} F1"] = f"{m['f1']:.3f}"
            row[f"{name} R detected"] = f"{m['recall_detected']:.3f}"
            row[f"{name} det. R"] = f"{m['detector_recall']:.3f}"
            row[f"{name} det. P"] = f"{m['detector_precision']:.3f}"
            if "ms_per_compare" in m:
                row[f"{name} ms/compare"] = f"{m['ms_per_compare']:.0f}"
        rows.append(row)
        head += [k for k in row if k not in head]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.get(k, "") for k in head) + " |" for row in rows]
    return "\n".join(lines)


def kinds_markdown(results: list[dict], kinds: list[str]) -> str:
    """Per variant, each kind's end-to-end F1 (precision, recall) and detector figures, and the worst kind."""
    head = ["variant", "worst kind F1", *kinds, *(f"{kind} detector R / P / merged" for kind in kinds)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        figures = [result["scenes"][kind] for kind in kinds]
        worst = result["worst_kind"]
        cells = [
            " ".join(f"{k}={v}" for k, v in result["settings"].items()) or "default",
            f"{result['scenes'][worst]['f1']:.3f} ({worst})",
            *(f"{m['f1']:.3f} ({m['precision']:.3f}, {m['recall']:.3f})" for m in figures),
            *(f"{m['detector_recall']:.3f} / {m['detector_precision']:.3f} / {m['merged_rate']:.3f}" for m in figures),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for name, curve in result["curves"].items():
        kind = "crops, simulated compares" if name in result["crops"] else "scenes, end to end"
        axes.plot(THRESHOLDS, curve["f1"], label=f"{name} ({kind})")
    axes.axvline(result["threshold"], color="black", linestyle="--", label=f"threshold {result['threshold']:.2f}")
    axes.set_xlim(0.1, 0.8)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("similarity threshold")
    axes.set_ylabel("match F1")
    axes.set_title(result["models"]["embedder"])
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def record_calibration(result: dict) -> None:
    """Record the calibrated threshold for this embedder: calibration.json and the store."""
    import bentoml

    from reid.models.sources import CALIBRATION_FILE

    model = bentoml.models.get(result["models"]["embedder"])
    spec = model.info.metadata["spec"]
    table = json.loads(CALIBRATION_FILE.read_text())
    table[Path(spec["weights"]).stem] = {"threshold": result["threshold"], **result["calibration"]}
    CALIBRATION_FILE.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    model.info.metadata["spec"] = {**spec, "threshold": result["threshold"]}
    model.flush()
    print(f"calibrated {model.tag}: threshold {result['threshold']:.2f} ({result['calibration']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, action="append", default=[])
    parser.add_argument("--scenes", type=Path, action="append", default=[])
    parser.add_argument("--kinds", type=Path, metavar="SHARED", help="the scene benchmark, built from SHARED's data")
    parser.add_argument("--kind", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--url")
    parser.add_argument("--threshold", type=float, help="override every variant's default threshold")
    parser.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--calibrate", type=Path, metavar="CROPS_DIR")
    args = parser.parse_args(argv)
    if not args.crops and not args.scenes and not args.kinds and not args.kind:
        parser.error("give --crops, --scenes and/or --kinds, --kind")
    if args.calibrate and args.calibrate not in args.crops:
        parser.error("--calibrate takes one of the --crops folders")
    with tempfile.TemporaryDirectory(prefix="reid-kinds-") as scratch:
        kinds = build_kinds(args.kinds, Path(scratch) / "kinds") if args.kinds else {}
        kinds.update(parse_kind(text, Path(scratch)) for text in args.kind)
        args.kind_names = list(kinds)
        args.scene_sets = {**kinds, **{folder.name: [folder] for folder in args.scenes}}
        results = [run_variant(overrides, args) for overrides in variants(args.grid, parse_settings(args.fixed))]
    print(markdown(results))
    if kinds:
        print(kinds_markdown(results, args.kind_names))
    if args.calibrate:
        if len(results) != 1:
            parser.error("--calibrate takes one variant")
        record_calibration(results[0])
    if args.plot:
        plot(args.plot, results[0])
    if args.json:
        args.json.write_text(json.dumps({"thresholds": THRESHOLDS.tolist(), "variants": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
