"""Synthetic scenes: second views, distant copies and line-ups keep their labels right."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.evaluation.datasets import GroundTruth, mot_sequences
from reid.evaluation.lineups import CANVAS, compose
from reid.evaluation.synthetic import (
    ViewChange,
    apply_to_boxes,
    apply_to_image,
    distant_copies,
    draw_change,
    write_pair,
)


def painted(width: int = 320, height: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with two coloured "persons" and their boxes."""
    image = np.full((height, width, 3), 90, np.uint8)
    boxes = np.array([[40.0, 60.0, 80.0, 200.0], [200.0, 40.0, 250.0, 220.0]])
    for colour, (x1, y1, x2, y2) in zip(((250, 30, 30), (30, 30, 250)), boxes.astype(int)):
        image[y1:y2, x1:x2] = colour
    return image, boxes


def test_a_drawn_change_carries_each_box_onto_its_pixels():
    image, boxes = painted()
    for seed in range(5):
        change = draw_change(image.shape[1], image.shape[0], np.random.default_rng(seed))
        second = apply_to_image(image, change)
        assert second.shape[1::-1] == change.size
        moved, inside = apply_to_boxes(boxes, change)
        for box, share in zip(moved, inside):
            if share < 0.9:
                continue
            x1, y1, x2, y2 = box.astype(int)
            centre = second[(y1 + y2) // 2, (x1 + x2) // 2].astype(int)
            assert abs(centre[0] - centre[2]) > 100  # still the red or the blue person, not grey


def test_a_mirror_swaps_left_and_right():
    homography = np.array([[-1.0, 0, 320], [0, 1, 0], [0, 0, 1]])
    change = ViewChange(homography, (320, 240), gamma=1.0, saturation=1.0, blur_sigma=0.0, jpeg_quality=95)
    moved, inside = apply_to_boxes(np.array([[40.0, 60.0, 80.0, 200.0]]), change)
    assert moved[0] == pytest.approx([240, 60, 280, 200])
    assert inside[0] == pytest.approx(1.0)


def test_a_written_pair_reads_back_with_the_same_identities(tmp_path: Path):
    image, boxes = painted()
    truth = GroundTruth(ids=np.array([7, 9]), boxes=boxes, visibility=np.array([1.0, 0.8]))
    change = draw_change(320, 240, np.random.default_rng(1))
    write_pair(tmp_path / "seq", image, truth, change)
    (sequence,) = mot_sequences(tmp_path)
    assert sequence.frame_numbers() == [1, 2]
    assert sequence.truth[1].ids.tolist() == [7, 9]
    assert set(sequence.truth[2].ids.tolist()) <= {7, 9}
    before = {7: 1.0, 9: 0.8}
    assert all(seen <= before[int(i)] + 1e-6 for i, seen in zip(sequence.truth[2].ids, sequence.truth[2].visibility))


def test_distant_copies_shrink_frames_and_boxes_alike(tmp_path: Path):
    source = tmp_path / "in" / "seq"
    (source / "img1").mkdir(parents=True)
    (source / "gt").mkdir()
    image, boxes = painted()
    cv2.imwrite(str(source / "img1" / "000001.jpg"), image)
    (source / "gt" / "gt.txt").write_text("1,3,40,60,40,140,1,1,1\n")
    (copy,) = distant_copies(tmp_path / "in", tmp_path / "out", 0.5)
    assert cv2.imread(str(copy.frames[1])).shape[:2] == (120, 160)
    assert copy.truth[1].boxes.tolist() == [[20, 30, 40, 100]]


def test_a_line_up_labels_every_person_with_what_is_left_visible():
    people = [np.full((200, 80, 3), 40 * k, np.uint8) for k in range(1, 6)]
    background = np.zeros((CANVAS[1], CANVAS[0], 3), np.uint8)
    image, rows = compose(people, background, np.random.default_rng(3))
    assert image.shape == (CANVAS[1], CANVAS[0], 3) and rows.shape == (5, 5)
    assert (rows[:, 0] >= 0).all() and (rows[:, 2] <= CANVAS[0]).all() and (rows[:, 3] <= CANVAS[1]).all()
    assert (rows[:, 4] > 0).all() and (rows[:, 4] <= 1).all()
    assert (np.diff(rows[:, 0]) > 0).all()  # side by side, left to right
    assert (rows[:, 4] < 1).any()  # neighbours overlap or the bottom edge cuts someone
