"""Detector input and output handling that needs no model: the network input of both resize modes."""

import numpy as np

from reid.models.detection import PAD_VALUE, network_input
from reid.models.specs import DetectorSpec


def spec(resize: str) -> DetectorSpec:
    return DetectorSpec(
        architecture="d", backend="openvino", weights="d.xml", input_width=8, input_height=4, resize=resize
    )


def test_stretch_fills_the_input_and_scales_each_axis():
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 200  # red
    tensor, scale = network_input(image, spec("stretch"))
    assert tensor.shape == (1, 3, 4, 8) and tensor.dtype == np.float32
    assert scale == (1.0, 0.5)
    assert tensor[0, 2].min() == 200 and tensor[0, 0].max() == 0  # BGR: red is the last channel


def test_letterbox_keeps_the_aspect_and_pads():
    image = np.full((8, 8, 3), 10, np.uint8)
    tensor, scale = network_input(image, spec("letterbox"))
    assert scale == (0.5, 0.5)
    assert (tensor[0, :, :, :4] == 10).all() and (tensor[0, :, :, 4:] == PAD_VALUE).all()


def test_a_yolo_export_output_becomes_suppressed_person_rows():
    from reid.models.detection import DetectorOptions, _yolo_rows

    output = np.zeros((1, 84, 4), np.float32)
    # cx, cy, w, h in input pixels; person score in row 4, another class in row 5.
    candidates = [[100, 120, 100, 200], [104, 120, 100, 200], [300, 300, 40, 40], [300, 300, 40, 40]]
    output[0, :4] = np.array(candidates, np.float32).T
    output[0, 4] = [0.9, 0.8, 0.1, 0.6]  # the second overlaps the first; the third is under the minimum
    output[0, 5, 3] = 0.99  # the fourth is more of a car than a person: its person score still counts
    rows = _yolo_rows(output, DetectorOptions(confidence=0.25, nms_iou=0.7))
    np.testing.assert_allclose(rows, [[50, 20, 150, 220, 0.9], [280, 280, 320, 320, 0.6]], rtol=1e-6)
