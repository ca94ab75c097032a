"""scripts/evaluate.py on the shared labelled data: figures at or above measured floors."""

import json

import pytest

from scripts.evaluate import main as evaluate
from tests.conftest import DATA, require_shared

# Measured 2026-11-26 with the default models (yolov8n INT8, Intel 0287 bf16, threshold 0.39,
# containment 0.8): PKU rank-1 1.000 / mAP 0.878; Duke rank-1 1.000; MOT17 P 0.979 R 0.993
# F1 0.986; two-camera hall F1 1.000; pair F1 0.848.
FLOORS = {
    ("crops", "pku-reid-val", "rank1"): 0.95,
    ("crops", "pku-reid-val", "mAP"): 0.8,
    ("crops", "duke-crops", "rank1"): 1.0,
    ("scenes", "mot17", "precision"): 0.95,
    ("scenes", "mot17", "recall"): 0.95,
    ("scenes", "mot17", "f1"): 0.95,
    ("scenes", "two-camera-hall", "f1"): 0.99,
}


@pytest.fixture(scope="module")
def figures(model_store, tmp_path_factory):
    require_shared()
    out = tmp_path_factory.mktemp("eval") / "eval.json"
    plot = out.with_suffix(".png")
    args = ["--json", str(out), "--plot", str(plot)]
    for name in ("pku-reid-val", "duke-crops"):
        args += ["--crops", str(DATA / name)]
    for name in ("mot17", "two-camera-hall"):
        args += ["--scenes", str(DATA / name)]
    assert evaluate(args) == 0
    assert plot.stat().st_size > 10_000
    return json.loads(out.read_text())["variants"][0]


@pytest.mark.parametrize("key", FLOORS, ids=["/".join(k) for k in FLOORS])
def test_figures_meet_their_floors(figures, key):
    kind, name, metric = key
    assert figures[kind][name][metric] >= FLOORS[key], figures[kind][name]


def test_json_holds_every_figure(figures):
    for crops in figures["crops"].values():
        assert {"rank1", "rank5", "mAP", "queries", "ms_per_crop"} <= set(crops)
    for scenes in figures["scenes"].values():
        assert {"precision", "recall", "f1", "detector_recall", "pairs"} <= set(scenes)
    assert figures["pairs"]["pair_f1"] >= 0.8


def test_scenes_against_a_running_server_agree_with_in_process(server, figures, tmp_path):
    out = tmp_path / "remote.json"
    assert evaluate(["--url", server.url, "--scenes", str(DATA / "two-camera-hall"), "--json", str(out)]) == 0
    remote = json.loads(out.read_text())["variants"][0]["scenes"]["two-camera-hall"]
    assert remote["f1"] == pytest.approx(figures["scenes"]["two-camera-hall"]["f1"], abs=0.05)
