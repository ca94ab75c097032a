"""End to end: ``POST /group`` and ``/group/visualize`` through `bentoml serve`, the client and the CLI."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from reid.clients.cli import main as reid
from reid.clients.client import ClientError, ReIDClient
from reid.evaluation.datasets import load_mot_sequence
from reid.evaluation.groups import score_group
from reid.schemas import CompareResponse, GroupResponse
from reid_devtools.hostile import encode, raw_exchange
from reid_devtools.shared import DATA, first_and_last, sequence

# Measured 2026-11-26 on the hall's four frames (three people, two cameras) at the default
# threshold: pairwise precision 1.0 and recall 1.0 (scripts/evaluate_group.py).
PRECISION_FLOOR = 0.9
RECALL_FLOOR = 0.8


@pytest.fixture(scope="module")
def hall(shared):
    seq = load_mot_sequence(DATA / "two-camera-hall" / "HALL-3P")
    frames = seq.frame_numbers()
    return [seq.frames[f] for f in frames], [seq.truth[f] for f in frames]


def files(paths) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]


def post(server, route: str, parts, data: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{route}", files=parts, data=data, timeout=180)


def test_the_hall_grouped_with_the_client_finds_its_three_people(server, hall):
    paths, truths = hall
    with ReIDClient(server.url) as client:
        answer = client.group(paths)
    assert isinstance(answer, GroupResponse) and answer.image_count == 4
    score = score_group(answer, truths)
    assert score.linked and score.correct / score.linked >= PRECISION_FLOOR, score
    assert score.found / score.present >= RECALL_FLOOR, score
    members = [(m.image_index, m.person_index) for identity in answer.identities for m in identity.members]
    matchable = [(k, p.index) for k, image in enumerate(answer.images) for p in image.persons if p.matchable]
    assert sorted(members) == sorted(matchable), "every matchable person in exactly one identity"
    for identity in answer.identities:
        images = [m.image_index for m in identity.members]
        assert images == sorted(set(images)), "at most one person per image, in image order"
        for m in identity.members:
            assert m.bbox == answer.images[m.image_index].persons[m.person_index].bbox
    sizes = [len(identity.members) for identity in answer.identities]
    assert sizes == sorted(sizes, reverse=True)


def test_two_images_give_the_pairs_of_compare(server):
    seq = sequence("MOT17-04-FRCNN")
    first, last = first_and_last(seq)
    paths = [seq.frames[first], seq.frames[last]]
    grouped = post(server, "/group", files(paths), {"threshold": "0.4"})
    assert grouped.status_code == 200, grouped.text
    group = GroupResponse.model_validate(grouped.json())
    compared = httpx.post(
        f"{server.url}/compare",
        files={"image1": paths[0].open("rb"), "image2": paths[1].open("rb")},
        data={"threshold": "0.4"},
        timeout=120,
    )
    compare = CompareResponse.model_validate(compared.json())
    pairs = {
        (identity.members[0].person_index, identity.members[1].person_index)
        for identity in group.identities
        if len(identity.members) == 2
    }
    assert pairs == {(m.image1_index, m.image2_index) for m in compare.matches}
    assert [image.person_count for image in group.images] == [compare.image1_person_count, compare.image2_person_count]
    assert group.threshold == 0.4 and group.models == compare.models


def test_group_refusals_name_the_field(server, hall, tmp_path):
    paths, _ = hall
    one = post(server, "/group", files(paths[:1]))
    assert one.status_code == 400 and one.json()["field"] == "images", one.text
    assert "at least 2" in one.json()["error"]
    many = post(server, "/group", files(paths[:1] * 17))
    assert many.status_code == 400 and "at most 16" in many.json()["error"], many.text
    broken = files(paths[:2]) + [("images", ("notes.jpg", b"not an image", "image/jpeg"))]
    refused = post(server, "/group", broken)
    assert refused.status_code == 415 and refused.json()["field"] == "images[2]", refused.text
    text = post(server, "/group", files(paths[:2]), {"images": "http://example.com/a.jpg"})
    assert text.status_code == 400 and text.json()["field"] == "images", text.text
    wrong = post(server, "/group", files(paths[:2]), {"threshold": "2"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "threshold"
    stranger = post(server, "/group", [*files(paths[:2]), ("image1", ("a.jpg", b"x", "image/jpeg"))])
    assert stranger.status_code == 400 and stranger.json()["field"] == "image1"
    with ReIDClient(server.url) as client, pytest.raises(ClientError) as raised:
        client.group([paths[0]])
    assert raised.value.status == 400 and raised.value.field == "images"


def test_a_group_body_over_its_cap_is_refused_before_it_is_read(server):
    blank = encode(Image.new("RGB", (64, 64), (90, 90, 90)), "PNG")
    # Declared length over REID_MAX_GROUP_BYTES (64 MiB): refused from the header alone.
    head = (
        b"POST /group HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (65 * 2**20)
    )
    answer = raw_exchange(server.url, head + b"--b\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and b"67108864" in answer, answer[:300]
    assert post(server, "/group", [("images", ("a.png", blank, "image/png"))] * 2).status_code == 200


def test_group_visualize_draws_a_grid(server, hall):
    paths, _ = hall
    response = post(server, "/group/visualize", files(paths))
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.text
    picture = Image.open(io.BytesIO(response.content))
    # Four images: one row of four cells of at most 960 x 540 with 16-pixel gaps.
    assert picture.format == "JPEG" and picture.width == 4 * 960 + 3 * 16 and picture.height == 540


def test_group_is_in_the_openapi_document(server):
    spec = httpx.get(f"{server.url}/docs.json", timeout=30).json()
    assert "/group" in spec["paths"] and "/group/visualize" in spec["paths"]
    assert "GroupResponse" in json.dumps(spec)


def test_cli_group_against_the_server_and_in_process(server, hall, tmp_path, capsys):
    paths, _ = hall
    out = tmp_path / "grid.jpg"
    names = [str(p) for p in paths]
    assert reid(["group", *names, "--url", server.url, "--json", "--out", str(out)]) == 0
    served = GroupResponse.model_validate_json(capsys.readouterr().out)
    assert Image.open(out).format == "JPEG"
    assert reid(["group", *names, "--json"]) == 0
    local = GroupResponse.model_validate_json(capsys.readouterr().out)
    assert [len(i.members) for i in local.identities] == [len(i.members) for i in served.identities]
    assert reid(["group", *names, "--url", server.url]) == 0
    assert "identities" in capsys.readouterr().out
    assert reid(["group", names[0], "--url", server.url]) == 1
    assert "images" in capsys.readouterr().err
