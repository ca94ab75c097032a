"""The Bento, its container files, the deployment files, and serving split one service per process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from reid_devtools.containers import image_name, project_version
from reid_devtools.processes import ONE_AT_A_TIME, ServerProcess, free_port
from reid_devtools.shared import MODELS, ROOT, first_and_last, sequence

SERVICES = {"ReID", "PersonDetector", "PersonEmbedder"}
K8S = ROOT / "deploy" / "k8s"


@pytest.fixture(scope="module")
def bento(model_store) -> Path:
    """The Bento as make bento builds it (scripts/build_bento.py), from the test run's store."""
    built = subprocess.run(
        [sys.executable, "scripts/build_bento.py"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    tag = built.stdout.strip().splitlines()[-1]
    name, version = tag.split(":")
    assert tag == image_name().removeprefix("localhost/")
    return model_store / "bentos" / name / version


@pytest.mark.slow
def test_bento_holds_the_services_both_models_and_the_runtime_only(bento):
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["entry_service"] == "ReID"
    services = {s["name"]: s for s in manifest["services"]}
    assert set(services) == SERVICES
    assert services["ReID"]["dependencies"] == [{"service": "PersonDetector"}, {"service": "PersonEmbedder"}]
    assert services["PersonDetector"]["models"][0]["tag"].startswith("person-detector:")
    assert services["PersonEmbedder"]["models"][0]["tag"].startswith("person-embedder:")
    shipped = ("service.py", "reid/core/pipeline.py", "reid/models/calibration.json", "reid/serving/ui/static/app.js")
    for source in shipped:
        assert (bento / "src" / source).is_file(), source
    for unshipped in ("tests", "reid_devtools", "scripts"):
        assert not (bento / "src" / unshipped).exists(), unshipped

    def pins(text: str) -> set[str]:
        return {line.strip().lower() for line in text.splitlines() if "==" in line and not line.startswith("#")}

    requirements = pins(next((bento / "env" / "python").glob("requirements.*")).read_text())
    assert requirements == pins((ROOT / "requirements" / "runtime.lock").read_text())
    pinned = {pin.split("==")[0] for pin in requirements}
    assert {"bentoml", "openvino", "opencv-python-headless"} <= pinned
    assert not {"torch", "ultralytics-opencv-headless", "torchreid", "pytest", "ruff", "mypy", "hypothesis"} & pinned


def test_a_stored_model_on_the_torch_extra_makes_the_bento_need_it(model_store):
    from reid.config import Settings
    from reid.models.importer import main as import_models
    from reid.models.loading import StoredModels

    assert not StoredModels.open(Settings(), detector=False, embedder=False).needs_torch_extra
    arguments = ["--from", str(MODELS), "--only", "detector", "--detector", "yolov8n_int8_openvino_model"]
    arguments += ["--detector-runtime", "ultralytics", "--detector-name", "person-detector-ultralytics"]
    assert import_models(arguments) == 0
    settings = Settings(detector_model="person-detector-ultralytics")
    assert StoredModels.open(settings, detector=False, embedder=False).needs_torch_extra
    env = {**os.environ, "REID_DETECTOR_MODEL": "person-detector-ultralytics"}
    picked = subprocess.run(
        [sys.executable, "-c", "import build_bento; print(build_bento.bento_lock())"],
        cwd=ROOT / "scripts",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert picked.stdout.strip() == "requirements/torch.lock"


@pytest.mark.slow
def test_dockerfile_installs_opencvs_libraries_and_runs_the_bento(bento):
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "libglib2.0-0" in dockerfile and "libgomp1" in dockerfile
    assert "ENTRYPOINT" in dockerfile and "entrypoint.sh" in dockerfile
    assert "ENV BENTOML_DO_NOT_TRACK" in dockerfile and "YOLO_OFFLINE" in dockerfile
    assert "EXPOSE 3000" in dockerfile


def k8s_documents() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for file in kustomization["resources"] for doc in yaml.safe_load_all((K8S / file).read_text())]


def test_k8s_manifests_are_valid_kubernetes():
    for doc in k8s_documents():
        kubernetes_validate.validate(doc, "1.37", strict=True)


def test_k8s_runs_each_service_in_its_own_scaled_probed_deployment():
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    autoscalers = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(deployments) == services == autoscalers == {"reid", "reid-detector", "reid-embedder"}
    served = {}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        command = container["command"]
        assert command[:3] == ["python", "-m", "reid.serving.podserve"]
        served[command[3]] = name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) | set(container["resources"]["limits"])
    assert set(served) == SERVICES
    entry = deployments["reid"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "PersonDetector=http://reid-detector:3000" in entry and "PersonEmbedder=http://reid-embedder:3000" in entry


def test_deployment_files_name_the_image_and_the_bento_make_container_builds():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert f"{image['newName']}:{image['newTag']}" == image_name()
    pods = [d["spec"]["template"]["spec"]["containers"][0] for d in k8s_documents() if d["kind"] == "Deployment"]
    assert {pod["image"] for pod in pods} == {image["name"]}
    assert {pod["imagePullPolicy"] for pod in pods} == {"IfNotPresent"}  # loaded onto the nodes, or pushed
    bentocloud = yaml.safe_load((ROOT / "deploy" / "bentocloud.yaml").read_text())
    assert bentocloud["bento"] == f"reid:{project_version()}"


def test_each_pods_memory_limit_is_what_its_service_declares():
    import service

    deployments = {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == "Deployment"}
    pods = {"ReID": "reid", "PersonDetector": "reid-detector", "PersonEmbedder": "reid-embedder"}
    for name, pod in pods.items():
        declared = getattr(service, name).config["resources"]["memory"]
        container = deployments[pod]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["memory"] == declared, name


def test_bentocloud_file_scales_each_service_on_its_own():
    from bentoml._internal.cloud.schemas.modelschemas import DeploymentServiceConfig
    from bentoml._internal.utils.cattr import bentoml_cattr

    config = yaml.safe_load((ROOT / "deploy" / "bentocloud.yaml").read_text())
    assert set(config["services"]) == SERVICES
    for name, service in config["services"].items():
        parsed = bentoml_cattr.structure(service, DeploymentServiceConfig)
        assert parsed.instance_type and parsed.scaling.max_replicas >= parsed.scaling.min_replicas >= 1, name


@pytest.mark.slow
def test_services_split_one_per_process_as_in_kubernetes(model_store, tmp_path):
    """What the k8s Deployments run, on loopback: two model services and an entry told where they are."""

    def podserve(service: str, *extra: str) -> ServerProcess:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "reid.serving.podserve",
            service,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ]
        env = {"REID_GALLERY_URI": str(tmp_path / "gallery.sqlite3"), **ONE_AT_A_TIME}
        return ServerProcess(command, port, env=env, ready_path="/livez" if service != "ReID" else "/readyz")

    with podserve("PersonDetector") as detector, podserve("PersonEmbedder") as embedder:
        with podserve(
            "ReID", "--dependency", f"PersonDetector={detector.url}", "--dependency", f"PersonEmbedder={embedder.url}"
        ) as entry:
            seq = sequence("MOT17-09-FRCNN")
            frames = [seq.frames[f].read_bytes() for f in first_and_last(seq)]
            files = {"image1": ("a.jpg", frames[0], "image/jpeg"), "image2": ("b.jpg", frames[1], "image/jpeg")}
            answer = httpx.post(f"{entry.url}/compare", files=files, timeout=60)
            assert answer.status_code == 200 and answer.json()["matches"], answer.text
            pickled = httpx.post(
                f"{entry.url}/compare",
                content=b"x",
                headers={"content-type": "application/vnd.bentoml+pickle"},
                timeout=30,
            )
            assert pickled.status_code == 415
            assert json.loads(httpx.get(f"{embedder.url}/schema.json", timeout=30).text)["name"] == "PersonEmbedder"
