"""End to end: `bentoml serve` (entry, detector and embedder processes) over loopback HTTP."""

import concurrent.futures

import bentoml
import httpx
import numpy as np
import pytest
from PIL import Image

from reid.core.boxes import box_iou
from reid.evaluation.frames import score_pair
from reid.schemas import CompareResponse
from reid_devtools.hostile import encode
from reid_devtools.shared import first_and_last, sequence

# Measured 2026-11-26 on MOT17-04 frames 1 and 8 (threshold 0.6): precision 1.0 (16 of 16
# matches right), recall 1.0 of the 16 identities detected in both frames.
PRECISION_FLOOR = 0.9
RECALL_FLOOR = 0.8


@pytest.fixture(scope="module")
def mot_pair(shared):
    seq = sequence("MOT17-04-FRCNN")
    first, last = first_and_last(seq)
    return seq.frames[first], seq.frames[last], seq.truth[first], seq.truth[last]


def post(server, files: dict, data: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/compare", files=files, data=data, timeout=120, **kwargs)


def jpeg_files(path1, path2) -> dict:
    return {
        "image1": ("a.jpg", path1.read_bytes(), "image/jpeg"),
        "image2": ("b.jpg", path2.read_bytes(), "image/jpeg"),
    }


def test_compare_with_the_bentoml_client_meets_the_accuracy_floors(server, mot_pair):
    path1, path2, truth1, truth2 = mot_pair
    with bentoml.SyncHTTPClient(server.url, timeout=120) as client:
        answer = CompareResponse.model_validate(client.compare(image1=path1, image2=path2))
    assert answer.image1_person_count == len(answer.image1_persons) > 10
    assert answer.image2_person_count == len(answer.image2_persons) > 10
    score = score_pair(answer, truth1, truth2)
    assert score.precision >= PRECISION_FLOOR, score
    assert score.recall >= RECALL_FLOOR, score
    matched1 = {m.image1_index for m in answer.matches}
    assert sorted(matched1 | set(answer.unmatched_image1)) == list(range(answer.image1_person_count))
    for m in answer.matches:
        assert m.similarity >= answer.threshold
        assert m.bbox_image1 == answer.image1_persons[m.image1_index].bbox
        assert m.bbox_image2 == answer.image2_persons[m.image2_index].bbox


def test_raw_multipart_post_gives_the_contract_fields(server, mot_pair):
    path1, path2, _, _ = mot_pair
    response = post(server, jpeg_files(path1, path2), data={"threshold": "0.75"})
    assert response.status_code == 200, response.text
    body = response.json()
    for key in ("image1_person_count", "image2_person_count", "matches", "unmatched_image1", "unmatched_image2"):
        assert key in body
    assert body["threshold"] == 0.75
    assert all(m["similarity"] >= 0.75 for m in body["matches"])
    first = body["matches"][0]
    assert set(first) == {"image1_index", "image2_index", "similarity", "bbox_image1", "bbox_image2"}
    assert all(isinstance(v, int) for v in first["bbox_image1"] + first["bbox_image2"])


def test_boxes_are_in_the_uploaded_images_coordinates(server, mot_pair):
    path1, path2, _, _ = mot_pair
    full = post(server, jpeg_files(path1, path2)).json()
    half = Image.open(path1).resize((960, 540), Image.Resampling.LANCZOS)
    small = post(server, {**jpeg_files(path1, path2), "image1": ("half.png", encode(half, "PNG"), "image/png")}).json()
    assert small["image1_size"] == {"width": 960, "height": 540}
    big_boxes = np.array([p["bbox"] for p in full["image1_persons"]], float)
    small_boxes = np.array([p["bbox"] for p in small["image1_persons"]], float)
    assert small_boxes[:, [0, 2]].max() <= 960 and small_boxes[:, [1, 3]].max() <= 540
    # Boxes on the half-size upload are about half of the boxes on the full-size one (the
    # detector sees nearly the same 640-pixel image, so nearly the same persons).
    overlap = box_iou(small_boxes * 2, big_boxes).max(axis=1)
    assert (overlap >= 0.7).mean() >= 0.8, overlap


def test_no_person_gives_zero_counts(server, mot_pair):
    path1, _, _, _ = mot_pair
    blank = encode(Image.new("RGB", (640, 480), (200, 200, 200)), "PNG")
    both_blank = post(server, {"image1": ("a.png", blank, "image/png"), "image2": ("b.png", blank, "image/png")})
    assert both_blank.status_code == 200
    assert both_blank.json()["image1_person_count"] == 0 and both_blank.json()["matches"] == []
    one_blank = post(
        server, {"image1": ("a.jpg", path1.read_bytes(), "image/jpeg"), "image2": ("b.png", blank, "image/png")}
    )
    body = one_blank.json()
    assert body["image2_person_count"] == 0 and body["matches"] == []
    assert body["unmatched_image1"] == list(range(body["image1_person_count"]))


def test_concurrent_requests_are_batched(server, mot_pair):
    path1, path2, _, _ = mot_pair

    def batch_sum_and_count(method: str) -> tuple[float, float]:
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        values = {"sum": 0.0, "count": 0.0}
        for line in metrics.splitlines():
            if line.startswith("bentoml_service_adaptive_batch_size_") and f'method_name="{method}"' in line:
                kind = line.split("{")[0].rsplit("_", 1)[1]
                if kind in values:
                    values[kind] += float(line.rsplit(" ", 1)[1])
        return values["sum"], values["count"]

    before = {m: batch_sum_and_count(m) for m in ("detect", "embed")}
    files = jpeg_files(path1, path2)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: post(server, files).status_code, range(16)))
    assert statuses == [200] * 16
    for method in ("detect", "embed"):
        (sum0, count0), (sum1, count1) = before[method], batch_sum_and_count(method)
        # Each observation is one call of the model with the number of requests it served (a
        # request too big for a batch's room is split over two calls).
        calls, served = count1 - count0, sum1 - sum0
        assert served >= 16, method
        assert calls < 16, f"{method}: 16 requests in {calls} calls"


def test_server_keeps_serving_after_bad_input(server, mot_pair):
    path1, path2, _, _ = mot_pair
    bad = [
        {"files": {"image1": ("a.jpg", b"\xff\xd8\xff" + bytes(100), "image/jpeg"), "image2": ("b.jpg", b"x")}},
        {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        {"json": {"image1": "http://169.254.169.254/"}},
    ]
    for request in bad:
        assert httpx.post(f"{server.url}/compare", timeout=60, **request).status_code in (400, 415)
    assert post(server, jpeg_files(path1, path2)).status_code == 200
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200


def test_the_guard_is_outside_bentomls_middleware(model_store):
    import service
    from reid.serving.http.guard import RequestGuard

    app = service.ReID.to_asgi(is_main=True)
    assert isinstance(app, RequestGuard), "serve_entry_behind no longer wraps the entry's app"
    assert not isinstance(service.PersonDetector.to_asgi(is_main=False), RequestGuard)


def test_each_upload_api_takes_exactly_the_fields_its_form_declares(model_store):
    import service

    forms = service.FORMS.by_path()
    checked = 0
    for api in service.ReID.apis.values():
        if api.route in forms:
            declared = forms[api.route]
            assert set(api.input_spec.model_fields) == set(declared.names), api.route
            for name in declared.names:
                described = api.input_spec.model_json_schema()["properties"][name]["description"]
                assert described == declared.fields[name].description, (api.route, name)
            checked += 1
    assert checked == len(forms) - 1  # the view's upload is a mounted route, documented from its form
