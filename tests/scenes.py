"""Real frames and labels from the shared data, for the real-model tests."""

from __future__ import annotations

from reid.datasets import MotSequence, load_mot_sequence
from reid.images import read_rgb  # noqa: F401  (the tests' way to read a frame)
from tests.conftest import DATA


def sequence(name: str) -> MotSequence:
    return load_mot_sequence(DATA / "mot17" / name)


def all_sequences() -> list[MotSequence]:
    return [load_mot_sequence(folder) for folder in sorted((DATA / "mot17").iterdir())]


def first_and_last(seq: MotSequence) -> tuple[int, int]:
    frames = seq.frame_numbers()
    return frames[0], frames[-1]
