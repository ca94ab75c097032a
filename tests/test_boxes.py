import numpy as np
import pytest

from reid.boxes import box_iou, crop, pad_boxes, reading_order, suppress_contained, to_pixel_boxes, unscale_boxes
from reid.pipeline import persons_from_detections


def test_unscale_maps_back_to_the_original_image():
    detections = np.array([[64.0, 36.0, 128.0, 180.0]])
    assert unscale_boxes(detections, (1 / 3, 1 / 3)).tolist() == [[192.0, 108.0, 384.0, 540.0]]


def test_pixel_boxes_are_rounded_clipped_and_never_empty():
    boxes = to_pixel_boxes(np.array([[-5.4, 2.6, 700.2, 50.0], [99.9, 10, 99.95, 10.2]]), width=640, height=480)
    assert boxes.tolist() == [[0, 3, 640, 50], [100, 10, 101, 11]]
    assert boxes.dtype == np.int64


def test_boxes_come_back_in_the_uploaded_images_coordinates():
    # Detections on a 640x360 copy of a 1920x1080 upload, scale (1/3, 1/3).
    detections = np.array([[300.0, 10.0, 330.0, 100.0, 0.5], [10.0, 20.0, 40.0, 110.0, 0.9]], np.float32)
    persons = persons_from_detections(detections, (640 / 1920, 360 / 1080), 1920, 1080)
    assert persons.boxes.tolist() == [[30, 60, 120, 330], [900, 30, 990, 300]]
    assert persons.confidence.tolist() == pytest.approx([0.9, 0.5])


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


def test_partial_box_inside_a_person_is_suppressed():
    person = [100, 100, 150, 250]
    head_and_torso = [105, 100, 150, 170]  # wholly inside the person's box
    neighbour = [200, 100, 250, 250]
    keep = suppress_contained(np.array([person, head_and_torso, neighbour]), 0.8)
    assert keep.tolist() == [True, False, True]


def test_box_over_a_group_is_suppressed():
    left, right = [100, 100, 150, 250], [160, 100, 210, 250]
    group = [95, 95, 215, 255]
    keep = suppress_contained(np.array([left, right, group]), 0.8)
    assert keep.tolist() == [True, True, False]


def test_suppression_off_and_overlapping_people_kept():
    a, b = [100, 100, 150, 250], [130, 100, 180, 250]  # 40% of b inside a
    assert suppress_contained(np.array([a, b]), 0.8).all()
    assert suppress_contained(np.array([a, a]), 0.0).all()


def test_padding_grows_boxes_inside_the_image():
    boxes = np.array([[10, 10, 20, 30], [0, 0, 10, 10]])
    assert pad_boxes(boxes, 0.1, 100, 100).tolist() == [[9, 8, 21, 32], [0, 0, 11, 11]]
    assert pad_boxes(boxes, 0.0, 100, 100) is boxes
