"""Labelled data on disk: MOT-style sequences with ground-truth boxes and identities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GroundTruth:
    """The labelled persons of one frame."""

    ids: np.ndarray  # (N,) int64 identity
    boxes: np.ndarray  # (N, 4) float64 pixel xyxy
    visibility: np.ndarray  # (N,) float64, 0..1

    def visible(self, min_visibility: float) -> GroundTruth:
        keep = self.visibility >= min_visibility
        return GroundTruth(ids=self.ids[keep], boxes=self.boxes[keep], visibility=self.visibility[keep])


@dataclass(frozen=True)
class MotSequence:
    name: str
    frames: dict[int, Path]  # frame number -> image file
    truth: dict[int, GroundTruth]

    def frame_numbers(self) -> list[int]:
        return sorted(self.frames)


def load_mot_sequence(folder: Path) -> MotSequence:
    """Read ``img1/*.jpg`` and ``gt/gt.txt`` (``frame,id,x,y,w,h,conf,class,visibility``).

    Only pedestrians count: rows with conf 1 and class 1, whatever their visibility.
    """
    frames = {int(path.stem): path for path in sorted((folder / "img1").glob("*.jpg"))}
    rows = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)
    rows = rows[(rows[:, 6] == 1) & (rows[:, 7] == 1)]
    truth = {}
    for frame in frames:
        mine = rows[rows[:, 0] == frame]
        xywh = mine[:, 2:6]
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        truth[frame] = GroundTruth(ids=mine[:, 1].astype(np.int64), boxes=boxes, visibility=mine[:, 8])
    return MotSequence(name=folder.name, frames=frames, truth=truth)


def mot_sequences(root: Path) -> list[MotSequence]:
    """Every sequence folder (one holding ``gt/gt.txt``) directly below ``root``."""
    return [load_mot_sequence(folder) for folder in sorted(root.iterdir()) if (folder / "gt" / "gt.txt").is_file()]


@dataclass(frozen=True)
class LabelledCrop:
    path: Path
    identity: str
    camera: str


@dataclass(frozen=True)
class CropSet:
    name: str
    query: list[LabelledCrop]
    gallery: list[LabelledCrop]


def _labelled_crops(folder: Path) -> list[LabelledCrop]:
    """Crops in either layout: ``0030_c1_f0056923.jpg`` files (identity ``0030``, camera ``c1``),
    or one folder per person, ``004/01_2.png`` (identity ``004``, camera ``01``)."""
    crops = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        if path.parent == folder:
            identity, camera = path.stem.split("_")[:2]
        else:
            identity, camera = path.parent.name, path.stem.split("_")[0]
        crops.append(LabelledCrop(path=path, identity=identity, camera=camera))
    return crops


def load_crop_set(folder: Path) -> CropSet:
    """Labelled person crops in ``folder/query`` and ``folder/gallery``."""
    return CropSet(
        name=folder.name, query=_labelled_crops(folder / "query"), gallery=_labelled_crops(folder / "gallery")
    )
