"""Two detectors' boxes fused by person height, on hand-made geometry."""

import numpy as np
import pytest

from reid.core.fusion import fuse_by_height
from reid.models.detection import TwoScaleDetector, input_scale
from reid.models.specs import DetectorSpec

# Two people side by side facing the camera, 100 x 300 pixels each, overlapping by 20 pixels.
LEFT = [100, 100, 200, 400]
RIGHT = [180, 100, 280, 400]
ACROSS_BOTH = [100, 95, 280, 440]  # the small-person detector's one box across the two


def rows(*boxes_and_scores) -> np.ndarray:
    return np.array([[*box, score] for box, score in boxes_and_scores], dtype=np.float32).reshape(-1, 5)


def test_a_box_across_two_neighbours_gives_way_to_one_box_per_person():
    fused = fuse_by_height(rows((ACROSS_BOTH, 0.9)), rows((LEFT, 0.8), (RIGHT, 0.7)), min_height=100)
    assert fused[:, :4].tolist() == [LEFT, RIGHT]


def test_short_persons_come_from_the_small_person_detector_only():
    distant = [500, 50, 515, 90]  # 40 px tall
    fused = fuse_by_height(rows((distant, 0.5)), rows(([600, 50, 615, 90], 0.9)), min_height=100)
    assert fused[:, :4].tolist() == [distant]


def test_one_person_boxed_by_both_keeps_the_small_person_detectors_box():
    fused = fuse_by_height(rows(([100, 100, 200, 420], 0.25)), rows((LEFT, 0.75)), min_height=100)
    assert fused[:, :4].tolist() == [[100, 100, 200, 420]]


def test_a_box_across_neighbours_goes_even_when_it_matches_one_of_them():
    # Mostly the left person (IoU 0.65 with LEFT), but it also holds the right one.
    wide = [100, 100, 254, 400]
    narrow_right = [200, 100, 250, 400]
    fused = fuse_by_height(rows((wide, 0.9)), rows((LEFT, 0.8), (narrow_right, 0.7)), min_height=100)
    assert fused[:, :4].tolist() == [LEFT, narrow_right]


def test_a_tall_person_only_the_small_person_detector_found_stays():
    alone = [600, 100, 700, 400]
    fused = fuse_by_height(rows((alone, 0.6)), rows((LEFT, 0.8)), min_height=100)
    assert sorted(fused[:, :4].tolist()) == [LEFT, alone]


def test_nothing_found_is_an_empty_set():
    assert fuse_by_height(np.zeros((0, 5)), np.zeros((0, 5)), 50).shape == (0, 5)
    assert fuse_by_height(rows((LEFT, 0.9)), np.zeros((0, 5)), 50)[:, :4].tolist() == [LEFT]


def test_the_height_rule_is_in_pixels_of_the_large_person_networks_input():
    yolo = DetectorSpec(architecture="y", backend="ultralytics", weights="y")  # 640 x 640, letterbox
    pair = DetectorSpec(
        architecture="d", backend="openvino", weights="d.xml", large_persons=yolo, large_person_height=80
    )
    assert input_scale((1080, 1920, 3), yolo) == pytest.approx(1 / 3)
    detector = TwoScaleDetector(small=None, large=type("Large", (), {"spec": yolo})(), spec=pair, max_detections=9)
    assert detector.min_height((1080, 1920, 3)) == pytest.approx(240)
    assert detector.min_height((450, 808, 3)) == pytest.approx(80 * 808 / 640)


def test_a_two_network_spec_round_trips_and_earlier_specs_have_none():
    yolo = DetectorSpec(architecture="y", backend="ultralytics", weights="y_openvino_model")
    pair = DetectorSpec(architecture="d", backend="openvino", weights="d.xml", large_persons=yolo)
    assert DetectorSpec.model_validate(pair.model_dump(mode="json", exclude_none=True)) == pair
    assert (
        DetectorSpec.model_validate({"architecture": "d", "backend": "openvino", "weights": "d"}).large_persons is None
    )
