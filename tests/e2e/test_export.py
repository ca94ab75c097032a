"""Fast runtimes agree with torchreid: the ONNX and OpenVINO exports of the shared OSNet."""

import numpy as np
import pytest

from reid.core.images import read_rgb
from reid.models.embedding import Embedder, Preprocess, preprocess
from reid.models.export import MAX_RELATIVE_ERROR, export_torchreid, relative_error
from reid.models.sources import embedder_spec
from reid_devtools.shared import MODELS, first_and_last, sequence


@pytest.fixture(scope="module")
def person_crops(shared):
    seq = sequence("MOT17-09-FRCNN")
    frame = first_and_last(seq)[0]
    image = read_rgb(seq.frames[frame])
    boxes = seq.truth[frame].boxes.round().astype(int).clip(0)
    return [image[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes if x2 > x1 and y2 > y1]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_export_agrees_with_torchreid_on_real_crops(backend, person_crops, tmp_path):
    weights = MODELS / "osnet_x0_25_msmt17.pth"
    spec = embedder_spec(weights, architecture=None, threshold=0.5)
    exported, error = export_torchreid(weights, spec, backend, tmp_path)
    assert error < MAX_RELATIVE_ERROR
    reference = Embedder(MODELS, spec).embed(person_crops)
    fast = Embedder(tmp_path, exported).embed(person_crops)
    assert relative_error(reference, fast) < MAX_RELATIVE_ERROR


def test_preprocess_matches_a_plain_reference():
    import cv2

    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(300, 90), (40, 20), (256, 128)]]
    spec = Preprocess()
    batch = preprocess(crops, spec)
    for crop, got in zip(crops, batch):
        interpolation = cv2.INTER_AREA if crop.shape[0] > 256 or crop.shape[1] > 128 else cv2.INTER_LINEAR
        resized = cv2.resize(crop, (128, 256), interpolation=interpolation).astype(np.float32) / 255
        expected = ((resized - np.array(spec.mean)) / np.array(spec.std)).transpose(2, 0, 1)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bgr_unnormalised_preprocess_for_intel_models():
    crop = np.zeros((256, 128, 3), np.uint8)
    crop[..., 0] = 200  # red
    spec = Preprocess(channels="BGR", scale=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    batch = preprocess([crop], spec)
    assert batch[0, 2].max() == 200 and batch[0, 0].max() == 0
