"""Where the shared models and labelled data are (``../shared`` beside the checkout, or
``REID_SHARED_DIR``), and the MOT17 sequences in them."""

from __future__ import annotations

import os
from pathlib import Path

from reid.evaluation.datasets import MotSequence, load_mot_sequence

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REID_SHARED_DIR", ROOT.parent / "shared")).resolve()
MODELS = SHARED / "models"
DATA = SHARED / "data"
CALIBRATION_CROPS = DATA / "cuhk03-pair1"


def sequence(name: str) -> MotSequence:
    return load_mot_sequence(DATA / "mot17" / name)


def all_sequences() -> list[MotSequence]:
    return [load_mot_sequence(folder) for folder in sorted((DATA / "mot17").iterdir())]


def first_and_last(seq: MotSequence) -> tuple[int, int]:
    frames = seq.frame_numbers()
    return frames[0], frames[-1]
