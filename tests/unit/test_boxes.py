import numpy as np
import pytest

from reid.core.boxes import box_iou, containment, crop, pad_boxes, reading_order, to_pixel_boxes
from reid.core.pipeline import PersonRules, persons_from_detections


def test_pixel_boxes_are_rounded_clipped_and_never_empty():
    boxes = to_pixel_boxes(np.array([[-5.4, 2.6, 700.2, 50.0], [99.9, 10, 99.95, 10.2]]), width=640, height=480)
    assert boxes.tolist() == [[0, 3, 640, 50], [100, 10, 101, 11]]
    assert boxes.dtype == np.int64


def test_persons_are_pixel_boxes_in_reading_order_with_their_confidence():
    detections = np.array([[900.2, 30.0, 990.0, 300.0, 0.5], [30.0, 60.4, 120.0, 330.0, 0.9]], np.float32)
    persons = persons_from_detections(detections, 1920, 1080, PersonRules())
    assert persons.boxes.tolist() == [[30, 60, 120, 330], [900, 30, 990, 300]]
    assert persons.confidence.tolist() == pytest.approx([0.9, 0.5])
    assert persons.matchable.all()


def test_persons_too_small_cut_off_or_over_the_cap_are_not_matchable():
    detections = np.array(
        [[0, 0, 10, 20, 0.9], [20, 0, 80, 30, 0.9], [100, 0, 130, 90, 0.8], [200, 0, 230, 90, 0.7]], np.float32
    )
    rules = PersonRules(min_person_height=25, min_person_aspect=1.0, max_persons=1)
    assert persons_from_detections(detections, 640, 480, rules).reason.tolist() == [
        "too_small",
        "cut_off",
        "",
        "over_limit",
    ]


def test_reading_order_is_left_to_right_then_top_to_bottom():
    boxes = np.array([[50, 0, 60, 10], [0, 50, 10, 60], [0, 0, 10, 10]])
    assert reading_order(boxes).tolist() == [2, 1, 0]


def test_iou():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_crop_is_the_box_region():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    assert (crop(image, np.array([1, 2, 4, 5])) == image[2:5, 1:4]).all()


def test_containment_is_the_share_of_each_box_inside_the_other():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 30, 30]])
    share = containment(boxes)
    assert share[0, 1] == 1.0 and share[1, 0] == 0.5 and share[0, 2] == 0.0
    assert np.diag(share).tolist() == [0.0, 0.0, 0.0]


def test_padding_grows_boxes_inside_the_image():
    boxes = np.array([[10, 10, 20, 30], [0, 0, 10, 10]])
    assert pad_boxes(boxes, 0.1, 100, 100).tolist() == [[9, 8, 21, 32], [0, 0, 11, 11]]
    assert pad_boxes(boxes, 0.0, 100, 100) is boxes
