"""The OCI image ``make container`` builds (localhost/reid:<version>), run with podman as a user
would run it: the runtime only, a non-root user, both models inside, settings by environment, a
gallery on a mounted volume that outlives the container, the API key, hostile uploads.

Run by ``make test-container``, which builds the image first (CI runs both).
"""

import json

import httpx
import pytest
import yaml

from reid.clients.client import ReIDClient
from reid.evaluation.datasets import load_mot_sequence
from reid_devtools.containers import image_name, podman, run_image
from reid_devtools.hostile import cases as hostile_cases
from reid_devtools.processes import free_port
from reid_devtools.shared import DATA, ROOT, hall_frames, hall_pair

KEY = "container-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
GALLERY = "sqlite:////data/gallery.sqlite3"
K8S = ROOT / "deploy" / "k8s"
# Nothing of the test and lint tools, nor the torch extra, is in an image of the default models.
NOT_SHIPPED = {"torch", "torchvision", "torchreid", "ultralytics", "pytest", "hypothesis", "ruff", "mypy"}


@pytest.fixture(scope="module")
def image(shared) -> str:
    name = image_name()
    if podman("image", "exists", name, check=False).returncode != 0:
        pytest.fail(f"{name} is not built: make test-container builds it (scripts/container.sh)")
    return name


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    volume = tmp_path_factory.mktemp("gallery")
    with run_image(image, env={"REID_API_KEY": KEY, "REID_GALLERY_URI": GALLERY}, volumes={volume: "/data"}) as server:
        yield server


def test_the_image_holds_the_runtime_and_both_models_and_runs_as_a_user(image):
    probe = (
        "import importlib.metadata as m, json, os, pathlib, shutil;"
        "packages = sorted(d.metadata['Name'].lower() for d in m.distributions());"
        "models = sorted(p.name for p in pathlib.Path(os.environ['BENTO_PATH'], 'models').iterdir());"
        "tools = [name for name in ('gcc', 'make', 'git') if shutil.which(name)];"
        "print(json.dumps({'uid': os.getuid(), 'packages': packages, 'models': models, 'tools': tools}))"
    )
    found = json.loads(podman("run", "--rm", "--network", "host", image, "python", "-c", probe).stdout)
    assert found["uid"] != 0
    assert {"bentoml", "openvino", "opencv-python-headless", "sqlalchemy"} <= set(found["packages"])
    assert not NOT_SHIPPED & set(found["packages"])
    assert found["models"] == ["person-detector", "person-embedder"]
    assert found["tools"] == []  # BentoML's build tools, purged (deploy/container/slim.Containerfile)


def test_compare_in_the_container_answers_as_the_local_pipeline(container, local_reid):
    import asyncio

    from reid.core.images import read_rgb

    files = hall_pair()
    response = httpx.post(f"{container.url}/compare", files=files, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    got = response.json()
    frames = hall_frames()
    local = asyncio.run(local_reid.compare(read_rgb(frames[0]), read_rgb(frames[-1])))
    assert (got["image1_person_count"], got["image2_person_count"]) == (
        local.image1_person_count,
        local.image2_person_count,
    )
    pairs = [(m["image1_index"], m["image2_index"]) for m in got["matches"]]
    assert pairs == [(m.image1_index, m.image2_index) for m in local.matches] and pairs
    # The embedder is quantised at each import: the image's and the test's may differ a little.
    for theirs, ours in zip(got["matches"], local.matches):
        assert theirs["similarity"] == pytest.approx(ours.similarity, abs=0.02)
        assert theirs["bbox_image1"] == list(ours.bbox_image1)


def test_group_in_the_container(container):
    frames = hall_frames()[:3]
    files = [("images", (f"{i}.jpg", frame.read_bytes(), "image/jpeg")) for i, frame in enumerate(frames)]
    response = httpx.post(f"{container.url}/group", files=files, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["image_count"] == 3 and len(answer["images"]) == 3
    assert any(len(identity["members"]) >= 2 for identity in answer["identities"])


def test_the_api_key_guards_the_api_and_not_the_probes(container):
    files = hall_pair()
    assert httpx.post(f"{container.url}/compare", files=files, timeout=60).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert httpx.post(f"{container.url}/compare", files=files, headers=wrong, timeout=60).status_code == 401
    for probe in ("/readyz", "/livez"):
        assert httpx.get(container.url + probe, timeout=10).status_code == 200


def test_hostile_uploads_get_their_status_and_the_container_keeps_serving(container):
    for name, request, status in hostile_cases():
        request["headers"] = httpx.Headers(request.get("headers"))
        request["headers"].update(AUTH)
        response = httpx.post(f"{container.url}/compare", timeout=60, **request)
        assert response.status_code == status, (name, response.status_code, response.text[:200])
    assert httpx.post(f"{container.url}/compare", files=hall_pair(), headers=AUTH, timeout=60).status_code == 200


def test_an_enrolment_outlives_the_container_on_its_volume(image, shared, tmp_path):
    hall = load_mot_sequence(DATA / "two-camera-hall" / "HALL-3P")
    truth = hall.truth[1]
    bbox = [round(v) for v in truth.boxes[0]]
    options = {"env": {"REID_API_KEY": KEY, "REID_GALLERY_URI": GALLERY}, "volumes": {tmp_path: "/data"}}
    with run_image(image, **options) as first, ReIDClient(first.url, api_key=KEY) as client:
        person_id = client.enrol(hall.frames[1], bbox=bbox, label="walker").person_id
    with run_image(image, **options) as second, ReIDClient(second.url, api_key=KEY) as client:
        assert [(p.person_id, p.label) for p in client.gallery_page().persons] == [(person_id, "walker")]
        answer = client.search(hall.frames[2])
        assert person_id in {person.matches[0].person_id for person in answer.persons if person.matches}


def test_the_kubernetes_pods_commands_run_in_the_image(image):
    """Each Deployment of deploy/k8s as its pod would run it (command, working directory), on
    loopback ports: the entry reaches both model services and answers a compare."""
    pods = {}
    for manifest in ("detector.yaml", "embedder.yaml", "entry.yaml"):
        deployment = next(d for d in yaml.safe_load_all((K8S / manifest).read_text()) if d["kind"] == "Deployment")
        pods[deployment["metadata"]["name"]] = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {name: free_port() for name in pods}

    def on_loopback(word: str, name: str) -> str:
        """A word of a pod's command with the Services' names and port 3000 made loopback ports."""
        if word == "3000":
            return str(ports[name])
        for other in pods:
            word = word.replace(f"http://{other}:3000", f"http://127.0.0.1:{ports[other]}")
        return word

    def run_pod(name: str):
        pod = pods[name]
        command = [on_loopback(word, name) for word in pod["command"]]
        probe = pod["readinessProbe"]["httpGet"]["path"]
        return run_image(image, command=command, workdir=pod["workingDir"], port=ports[name], ready_path=probe)

    with run_pod("reid-detector"), run_pod("reid-embedder"), run_pod("reid") as entry:
        response = httpx.post(f"{entry.url}/compare", files=hall_pair(), timeout=60)
        assert response.status_code == 200 and response.json()["matches"], response.text
