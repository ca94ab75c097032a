"""The typed client, the `reid` command, the picture of the matches, metrics and logs."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from reid.clients.cli import main as reid
from reid.clients.client import AsyncReIDClient, ClientError, ReIDClient
from reid.schemas import CompareResponse
from reid_devtools.shared import first_and_last, sequence


@pytest.fixture(scope="module")
def frames(shared):
    seq = sequence("MOT17-09-FRCNN")
    first, last = first_and_last(seq)
    return seq.frames[first], seq.frames[last]


def test_client_returns_a_typed_answer(server, frames):
    with ReIDClient(server.url) as client:
        answer = client.compare(*frames, threshold=0.5)
    assert isinstance(answer, CompareResponse)
    assert answer.threshold == 0.5 and answer.matches


@pytest.mark.anyio
async def test_async_client(server, frames):
    async with AsyncReIDClient(server.url) as client:
        answer = await client.compare(*frames)
    assert answer.image1_person_count > 0


def test_client_raises_typed_errors(server, frames, tmp_path):
    text = tmp_path / "not-an-image.jpg"
    text.write_text("hello")
    with ReIDClient(server.url) as client, pytest.raises(ClientError) as raised:
        client.compare(text, frames[1])
    assert raised.value.status == 415 and raised.value.field == "image1"


def test_visualize_endpoint_returns_a_jpeg_of_both_images(server, frames):
    import httpx

    files = {name: (path.name, path.read_bytes(), "image/jpeg") for name, path in zip(("image1", "image2"), frames)}
    response = httpx.post(f"{server.url}/compare/visualize", files=files, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(response.content))
    width, height = Image.open(frames[0]).size
    assert picture.format == "JPEG" and picture.height == height and picture.width > 2 * width
    bad = httpx.post(f"{server.url}/compare/visualize", files={"image1": ("a", b"x"), "image2": ("b", b"y")})
    assert bad.status_code == 415 and "error" in bad.json()


def test_cli_against_the_server_human_json_and_picture(server, frames, tmp_path, capsys):
    out = tmp_path / "matches.jpg"
    assert reid(["compare", str(frames[0]), str(frames[1]), "--url", server.url, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "matched (threshold" in text and "similarity" in text
    assert Image.open(out).format == "JPEG"
    assert reid(["compare", str(frames[0]), str(frames[1]), "--url", server.url, "--json"]) == 0
    answer = CompareResponse.model_validate_json(capsys.readouterr().out)
    assert answer.matches


def test_cli_in_process_agrees_with_the_server(server, frames, capsys):
    assert reid(["compare", str(frames[0]), str(frames[1]), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert reid(["compare", str(frames[0]), str(frames[1]), "--url", server.url, "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert local["image1_person_count"] == remote["image1_person_count"]
    assert [(m["image1_index"], m["image2_index"]) for m in local["matches"]] == [
        (m["image1_index"], m["image2_index"]) for m in remote["matches"]
    ]


def test_cli_errors_are_one_clear_line_and_a_nonzero_exit(server, frames, tmp_path, capsys):
    assert reid(["compare", str(tmp_path / "missing.jpg"), str(frames[1])]) == 1
    assert "missing.jpg" in capsys.readouterr().err
    gif = tmp_path / "a.gif"
    Image.new("RGB", (8, 8)).save(gif)
    assert reid(["compare", str(gif), str(frames[1]), "--url", server.url]) == 1
    assert "415" in capsys.readouterr().err
    # Nothing listens there: refused once the client's wait for a ready service is over.
    assert reid(["compare", str(frames[0]), str(frames[1]), "--url", "http://127.0.0.1:9"]) == 1
    assert "not ready after 10" in capsys.readouterr().err


def test_cli_lists_models(model_store, capsys):
    assert reid(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "person-detector:" in listing and "person-embedder:" in listing and "threshold" in listing


def test_metrics_and_logs(server, frames):
    import httpx

    files = {name: (path.name, path.read_bytes(), "image/jpeg") for name, path in zip(("image1", "image2"), frames)}
    assert httpx.post(f"{server.url}/compare", files=files, timeout=60).status_code == 200
    assert httpx.post(f"{server.url}/compare", json={}, timeout=60).status_code == 415
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    for name in ("reid_persons_per_image_count", "reid_match_similarity_count"):
        assert any(line.startswith(name) and float(line.split()[-1]) > 0 for line in metrics.splitlines()), name
    for stage in ("decode", "detect", "embed", "match"):
        assert f'reid_stage_seconds_count{{stage="{stage}"}}' in metrics
    assert 'reid_rejected_requests_total{reason="not_multipart"}' in metrics
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    compared = [line for line in lines if line.get("message") == "compared"]
    assert compared and compared[-1]["request_id"] and compared[-1]["logger"] == "reid"
    assert any(line.get("message") == "rejected" and line["reason"] == "not_multipart" for line in lines)


def test_render_draws_matched_pairs_in_colour_and_the_rest_in_grey(frames):
    from reid.core.visualize import GREY, render

    image = np.zeros((100, 200, 3), np.uint8)
    answer = CompareResponse.model_validate(
        {
            "image1_person_count": 2,
            "image2_person_count": 1,
            "matches": [
                {
                    "image1_index": 0,
                    "image2_index": 0,
                    "similarity": 0.9,
                    "bbox_image1": [10, 10, 40, 90],
                    "bbox_image2": [100, 10, 140, 90],
                }
            ],
            "unmatched_image1": [1],
            "unmatched_image2": [],
            "image1_persons": [
                {"index": 0, "bbox": [10, 10, 40, 90], "confidence": 0.9, "matchable": True},
                {"index": 1, "bbox": [150, 10, 190, 90], "confidence": 0.8, "matchable": True},
            ],
            "image2_persons": [{"index": 0, "bbox": [100, 10, 140, 90], "confidence": 0.9, "matchable": True}],
            "image1_not_matchable": [],
            "image2_not_matchable": [],
            "image1_size": {"width": 200, "height": 100},
            "image2_size": {"width": 200, "height": 100},
            "threshold": 0.5,
            "max_persons_matched": 50,
            "models": {"detector": "d", "embedder": "e"},
        }
    )
    picture = render(image, image, answer)
    assert picture.shape == (100, 416, 3)
    assert tuple(picture[80, 190]) == GREY  # right edge of the unmatched person's box in image1
    assert tuple(picture[80, 10]) not in (GREY, (0, 0, 0))  # left edge of the matched one
