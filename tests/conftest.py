"""Shared fixtures: the shared models and data, a private model store, a live server.

The real-model tests need ``../shared`` (override with ``REID_SHARED_DIR``). Under ``CI=true``
its absence fails the run; elsewhere those tests skip with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REID_SHARED_DIR", ROOT.parent / "shared")).resolve()
MODELS = SHARED / "models"
DATA = SHARED / "data"
CALIBRATION_CROPS = DATA / "cuhk03-pair1"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Before bentoml or ultralytics are imported anywhere: no telemetry, no network, and a
# model store of the test run's own.
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="reid-test-bentoml-"))
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="reid-test-yolo-"))


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not MODELS.is_dir():
        raise pytest.UsageError(f"CI=true but the shared models are missing at {MODELS}")


def require_shared() -> None:
    if not MODELS.is_dir():
        pytest.skip(f"shared models not found at {MODELS} (set REID_SHARED_DIR)")


@pytest.fixture(scope="session")
def model_store() -> Path:
    """The test run's BentoML store, holding the shared detector and embedder."""
    require_shared()
    from reid.importer import main as import_models

    assert import_models(["--from", str(MODELS), "--calibration-crops", str(CALIBRATION_CROPS)]) == 0
    return Path(os.environ["BENTOML_HOME"])


@pytest.fixture(scope="session")
def settings():
    from reid.config import Settings

    return Settings()


@pytest.fixture(scope="session")
def local_reid(model_store, settings):
    from reid.runtime import LocalReID

    return LocalReID(settings)


@pytest.fixture(scope="session")
def server(model_store):
    """A live service with the shared models, shared by the end-to-end tests."""
    from reid.processes import serve_bentoml

    with serve_bentoml() as running:
        yield running
