"""Labelled data on disk: MOT-style sequences with ground-truth boxes and identities."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# MOT17 classes that are people but not pedestrians to track: on a vehicle, static, distractor,
# reflection. A detection on one of them is neither right nor wrong.
IGNORED_CLASSES = (2, 7, 8, 12)
# A crop named with its person and camera: DukeMTMC-reID's 0030_c1_f0056923.jpg, Market-1501's
# 0001_c1s1_001051_00.jpg (camera 1, its first sequence; -1 and 0 are its distractors and junk).
CROP_NAME = re.compile(r"^(-?\d+)_(c\d+)")


@dataclass(frozen=True)
class GroundTruth:
    """The labelled persons of one frame."""

    ids: np.ndarray  # (N,) int64 identity
    boxes: np.ndarray  # (N, 4) float64 pixel xyxy
    visibility: np.ndarray  # (N,) float64, 0..1
    ignored: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (K, 4) person-like regions not scored

    def visible(self, min_visibility: float) -> GroundTruth:
        """The persons at least ``min_visibility`` visible (0..1)."""
        keep = self.visibility >= min_visibility
        return GroundTruth(self.ids[keep], self.boxes[keep], self.visibility[keep], self.ignored)


@dataclass(frozen=True)
class MotSequence:
    """One labelled sequence: its frames and their ground truth."""

    name: str
    frames: dict[int, Path]  # frame number -> image file
    truth: dict[int, GroundTruth]

    def frame_numbers(self) -> list[int]:
        """The frame numbers, in order."""
        return sorted(self.frames)


def load_mot_sequence(folder: Path) -> MotSequence:
    """Read ``img1/*.jpg`` and ``gt/gt.txt`` (``frame,id,x,y,w,h,conf,class,visibility``).

    Pedestrians count: rows with conf 1 and class 1, whatever their visibility. Other people
    (``IGNORED_CLASSES``) are regions where a detection is not scored.
    """
    frames = {int(path.stem): path for path in sorted((folder / "img1").glob("*.jpg"))}
    rows = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)
    boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
    pedestrian = (rows[:, 6] == 1) & (rows[:, 7] == 1)
    ignored = np.isin(rows[:, 7], IGNORED_CLASSES)
    truth = {}
    for frame in frames:
        mine = pedestrian & (rows[:, 0] == frame)
        truth[frame] = GroundTruth(
            ids=rows[mine, 1].astype(np.int64),
            boxes=boxes[mine],
            visibility=rows[mine, 8],
            ignored=boxes[ignored & (rows[:, 0] == frame)],
        )
    return MotSequence(name=folder.name, frames=frames, truth=truth)


def mot_sequences(root: Path) -> list[MotSequence]:
    """Every sequence folder (one holding ``gt/gt.txt``) directly below ``root``."""
    return [load_mot_sequence(folder) for folder in sorted(root.iterdir()) if (folder / "gt" / "gt.txt").is_file()]


@dataclass(frozen=True)
class LabelledCrop:
    """A person crop with its identity and camera."""

    path: Path
    identity: str
    camera: str


@dataclass(frozen=True)
class CropSet:
    """Query and gallery crops of one labelled crop data set."""

    name: str
    query: list[LabelledCrop]
    gallery: list[LabelledCrop]


def crop_name(name: str) -> tuple[str, str] | None:
    """``(identity, camera)`` of a crop named as :data:`CROP_NAME` says (``0001_c1s1_001051_00.jpg``:
    ``("0001", "c1")``), else None."""
    found = CROP_NAME.match(name)
    return (found[1], found[2]) if found else None


def _labelled_crops(folder: Path) -> list[LabelledCrop]:
    """Crops in either layout: files named by :func:`crop_name` (``0030_c1_f0056923.jpg``:
    identity ``0030``, camera ``c1``), or one folder per person, ``004/01_2.png`` (identity
    ``004``, camera ``01``)."""
    crops = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        if path.parent == folder:
            identity, camera = crop_name(path.name) or path.stem.split("_")[:2]
        else:
            identity, camera = path.parent.name, path.stem.split("_")[0]
        crops.append(LabelledCrop(path=path, identity=identity, camera=camera))
    return crops


def load_crop_set(folder: Path) -> CropSet:
    """Labelled person crops in ``folder/query`` and ``folder/gallery``."""
    return CropSet(
        name=folder.name, query=_labelled_crops(folder / "query"), gallery=_labelled_crops(folder / "gallery")
    )
