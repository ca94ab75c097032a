"""Hostile input, round three (issue 16), over real HTTP against ``bentoml serve``: budgets that
cannot leak, no 500 from odd paths, enrolments validated before they are written and never
committed after their 504, idempotent retries, the person rules at enrolment, one value per
parameter, the open routes cheap and guarded, uploads that never outlive their request.

One server with an API key (on /metrics too), one request in flight at a time, a short request
timeout, a gallery file the tests can lock, and a temporary folder of its own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from reid_devtools.hostile import front_door_cases, multipart
from reid_devtools.processes import serve_bentoml
from reid_devtools.shared import DATA, enrolment_form, hall_pair, person_photo, photo_size

KEY = "front-door-key"
AUTH = {"x-api-key": KEY}
TIMEOUT_S = 8.0  # REID_REQUEST_TIMEOUT_S: a gallery write ends 1 s before it
DEAD_PID = 4_194_305  # over Linux's largest pid: never a running process

pytestmark = pytest.mark.slow  # a server of the module's own


@pytest.fixture(scope="module")
def temp_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("entry-tmp")
    # Left by a process that no longer runs: the entry removes it at start-up.
    abandoned = root / f"reid-uploads-{DEAD_PID}" / "bentoml-request-x"
    abandoned.mkdir(parents=True)
    (abandoned / "tmpphoto.jpg").write_bytes(b"\xff\xd8 a photo")
    return root


@pytest.fixture(scope="module")
def guarded(model_store, temp_root, tmp_path_factory):
    store = tmp_path_factory.mktemp("gallery") / "gallery.sqlite3"
    env = {
        "REID_API_KEY": KEY,
        "REID_METRICS_NEED_KEY": "true",
        "REID_MAX_IN_FLIGHT": "1",
        "REID_REQUEST_TIMEOUT_S": str(TIMEOUT_S),
        "REID_GALLERY_URI": str(store),
        "TMPDIR": str(temp_root),
    }
    with serve_bentoml(env=env) as server:
        server.gallery = store
        yield server


@pytest.fixture(scope="module")
def photo(shared) -> bytes:
    return person_photo()


def gallery_total(server) -> int:
    response = httpx.get(f"{server.url}/gallery/persons", headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def gauge(server, name: str) -> float:
    """A gauge of the entry's on /metrics."""
    metrics = httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=30).text
    found = re.search(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", metrics, re.M)
    assert found, f"{name} is not on /metrics"
    return float(found.group(1))


def budget_held(server) -> float:
    return gauge(server, "reid_upload_bytes_held")


def until(condition, timeout: float, every: float = 0.05) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while not (met := condition()) and time.monotonic() < deadline:
        time.sleep(every)
    return met


def holds(condition, seconds: float, every: float = 0.1) -> bool:
    """Whether ``condition()`` stayed true, polled for ``seconds``."""
    deadline = time.monotonic() + seconds
    while condition():
        if time.monotonic() >= deadline:
            return True
        time.sleep(every)
    return False


def files_in(folder: Path, settle_s: float = 3.0) -> list[Path]:
    """The files left in ``folder`` once BentoML's end-of-request clean-up has had its moment."""
    deadline = time.monotonic() + settle_s
    while (left := [p for p in folder.rglob("*") if p.is_file()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def hall_compare(server) -> httpx.Response:
    return httpx.post(f"{server.url}/compare", files=hall_pair(), headers=AUTH, timeout=60)


def test_each_hostile_case_gets_its_status_stores_nothing_and_holds_no_budget(guarded, photo):
    before = gallery_total(guarded)
    # Sent again and again: 12 of them with a leaked budget each made every upload a 503.
    for _ in range(3):
        for name, method, path, kwargs, status in front_door_cases(photo, padding=8 * 2**20):
            response = httpx.request(
                method,
                guarded.url + path,
                headers={**AUTH, **kwargs.get("headers", {})},
                timeout=60,
                **{k: v for k, v in kwargs.items() if k != "headers"},
            )
            assert response.status_code == status, (name, response.text)
            payload = response.json()
            assert set(payload) == {"error", "field"} and payload["error"], (name, payload)
    assert budget_held(guarded) == 0
    assert gallery_total(guarded) == before
    assert hall_compare(guarded).status_code == 200


def test_odd_static_names_are_404_with_or_without_the_key(guarded):
    for path in ("/static_content/%00", "/static_content/" + "a" * 300, "/static_content/%2e%2e/%00"):
        for headers in ({}, AUTH):
            response = httpx.get(guarded.url + path, headers=headers, timeout=30)
            assert response.status_code == 404 and response.json()["error"], (path, response.text)


def test_the_person_rules_apply_at_enrolment_naming_the_reason(guarded, photo):
    for bbox, reason in [("0,0,1,1", "too_small"), ("0,0,8,8", "too_small"), ("0,0,60,40", "cut_off")]:
        response = httpx.post(
            f"{guarded.url}/gallery/persons", headers=AUTH, timeout=60, **enrolment_form(photo, bbox=bbox)
        )
        assert response.status_code == 400 and response.json()["field"] == "bbox"
        assert response.json()["error"].startswith(f"bbox: {reason}"), response.text


def test_metadata_is_validated_before_writing_and_the_list_stays_readable(guarded, photo):
    before = gallery_total(guarded)
    for metadata in ['{"note":"\\ud800"}', '{"a":' + "[" * 300 + "]" * 300 + "}", '{"x":NaN}', '{"x":1e999}']:
        response = httpx.post(
            f"{guarded.url}/gallery/persons", headers=AUTH, timeout=60, **enrolment_form(photo, metadata=metadata)
        )
        assert response.status_code == 400 and response.json()["field"] == "metadata", response.text
    stored = httpx.post(
        f"{guarded.url}/gallery/persons",
        headers=AUTH,
        timeout=60,
        **enrolment_form(photo, metadata=json.dumps({"note": "café ☕", "n": [1.5, None]}), label="kept"),
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["metadata"] == {"note": "café ☕", "n": [1.5, None]}
    assert gallery_total(guarded) == before + 1
    listed = httpx.get(f"{guarded.url}/gallery/persons", params={"limit": 100}, headers=AUTH, timeout=30)
    assert stored.json() in listed.json()["persons"]


def test_an_idempotency_key_makes_a_retry_return_the_first_enrolment(guarded, photo):
    key = {"idempotency-key": uuid.uuid4().hex}
    form = enrolment_form(photo, label="retried")
    first = httpx.post(f"{guarded.url}/gallery/persons", headers={**AUTH, **key}, timeout=60, **form)
    before = gallery_total(guarded)
    again = httpx.post(f"{guarded.url}/gallery/persons", headers={**AUTH, **key}, timeout=60, **form)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert gallery_total(guarded) == before
    other = httpx.post(
        f"{guarded.url}/gallery/persons", headers={**AUTH, **key}, timeout=60, **enrolment_form(photo, label="another")
    )
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["error"]
    bad = httpx.post(f"{guarded.url}/gallery/persons", headers={**AUTH, "idempotency-key": "a b"}, timeout=60, **form)
    assert bad.status_code == 400 and bad.json()["field"] == "idempotency-key"


def test_an_enrolment_answered_504_is_never_committed_and_its_retry_stores_it_once(guarded, photo):
    key = {"idempotency-key": uuid.uuid4().hex}
    form = enrolment_form(photo, label="after the lock")
    before = gallery_total(guarded)
    holder = sqlite3.connect(guarded.gallery, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (a reembed, a replica) holds the write lock
    try:
        started = time.monotonic()
        with httpx.Client(timeout=60) as client:
            answer: list[httpx.Response] = []
            sender = threading.Thread(
                target=lambda: answer.append(
                    client.post(f"{guarded.url}/gallery/persons", headers={**AUTH, **key}, **form)
                )
            )
            sender.start()
            assert until(lambda: gauge(guarded, "reid_requests_in_flight") >= 1, timeout=10), "never in flight"
            # The gallery's reads count towards the in-flight limit (1 here): the enrolment holds it.
            busy = httpx.get(f"{guarded.url}/gallery/persons", headers=AUTH, timeout=30)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            sender.join(60)
        assert answer[0].status_code == 504, answer[0].text
        assert time.monotonic() - started < TIMEOUT_S + 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # The lock is free: a write still waiting for it would land now.
    assert holds(lambda: gallery_total(guarded) == before, seconds=1.0), "committed after its 504"
    retried = [httpx.post(f"{guarded.url}/gallery/persons", headers={**AUTH, **key}, timeout=60, **form) for _ in "ab"]
    assert [r.status_code for r in retried] == [200, 200] and retried[0].json() == retried[1].json()
    assert gallery_total(guarded) == before + 1


def test_a_repeated_parameter_is_a_400_and_changes_nothing(guarded, photo):
    httpx.post(f"{guarded.url}/gallery/persons", headers=AUTH, timeout=60, **enrolment_form(photo))
    before = gallery_total(guarded)
    cleared = httpx.delete(f"{guarded.url}/gallery?confirm=false&confirm=true", headers=AUTH, timeout=30)
    assert cleared.status_code == 400 and cleared.json()["field"] == "confirm"
    paged = httpx.get(f"{guarded.url}/gallery/persons?offset=0&offset=5", headers=AUTH, timeout=30)
    assert paged.status_code == 400 and paged.json()["field"] == "offset"
    twice = multipart([(b"image", b"p.jpg", photo), (b"label", None, b"a"), (b"label", None, b"b")])
    form = httpx.post(
        f"{guarded.url}/gallery/persons",
        content=twice,
        headers={**AUTH, "content-type": "multipart/form-data; boundary=hostile"},
        timeout=60,
    )
    assert form.status_code == 400 and form.json()["field"] == "label"
    assert gallery_total(guarded) == before


def test_metrics_need_the_key_when_asked_and_the_api_document_is_served_from_a_cache(guarded):
    assert httpx.get(f"{guarded.url}/metrics", timeout=30).status_code == 401
    assert httpx.get(f"{guarded.url}/metrics", headers=AUTH, timeout=30).status_code == 200
    documents = [httpx.get(f"{guarded.url}/docs.json", timeout=30) for _ in range(3)]
    assert {d.status_code for d in documents} == {200} and len({d.content for d in documents}) == 1
    assert "/gallery/persons" in documents[0].json()["paths"]


def test_uploads_live_in_a_private_folder_that_a_killed_worker_does_not_leave_behind(guarded, temp_root, photo):
    assert not (temp_root / f"reid-uploads-{DEAD_PID}").exists()  # removed at start-up
    entry = next(pid for name, pid in guarded.processes().items() if name.startswith("ReID#"))
    folder = temp_root / f"reid-uploads-{entry}"
    assert folder.is_dir() and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert hall_compare(guarded).status_code == 200
    assert files_in(folder) == []  # emptied at the end of the request
    frames = sorted((DATA / "mot17" / "MOT17-04-FRCNN" / "img1").iterdir())[:16]
    group = [("images", (f"{i}.jpg", f.read_bytes(), "image/jpeg")) for i, f in enumerate(frames)]

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # its worker is killed under it
            httpx.post(f"{guarded.url}/group", files=group, headers=AUTH, timeout=60)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    deadline = time.monotonic() + 20
    while not [p for p in folder.rglob("*.jpg")] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in folder.rglob("*.jpg")], "the group's photos never reached the private folder"
    os.kill(entry, signal.SIGKILL)  # mid-request: nothing of the worker's own clean-up runs
    sender.join(60)
    restarted = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = [pid for name, pid in guarded.processes().items() if name.startswith("ReID#")]
        ready = False
        with contextlib.suppress(httpx.HTTPError):  # the new worker may still be starting
            ready = bool(pids) and httpx.get(f"{guarded.url}/readyz", timeout=10).status_code == 200
        if pids and pids[0] != entry and ready:
            restarted = pids[0]
            break
        time.sleep(0.2)
    assert restarted, "the entry worker was not restarted"
    assert not folder.exists(), "the killed worker's uploads are still on disk"
    assert (temp_root / f"reid-uploads-{restarted}").is_dir()


def test_the_client_sends_a_key_and_a_retry_with_it_stores_the_person_once(guarded, photo, tmp_path):
    from reid.clients.client import ClientError, ReIDClient

    path = tmp_path / "person.jpg"
    path.write_bytes(photo)
    whole = [0, 0, *photo_size(photo)]
    with ReIDClient(guarded.url, api_key=KEY) as client:
        before = client.gallery_page().total
        first = client.enrol(path, bbox=whole, label="client", idempotency_key="client-retry-1")
        again = client.enrol(path, bbox=whole, label="client", idempotency_key="client-retry-1")
        fresh = client.enrol(path, bbox=whole, label="client")  # a key of its own
        assert first == again and fresh.person_id != first.person_id
        assert client.gallery_page().total == before + 2
        with pytest.raises(ClientError) as conflict:
            client.enrol(path, bbox=whole, label="changed", idempotency_key="client-retry-1")
        assert conflict.value.status == 409
