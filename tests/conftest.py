"""Fixtures: the shared models and data, a private model store, a live server.

``tests/unit`` needs none of them: no ``../shared``, no server, under a minute
(``make test-fast``). ``tests/e2e`` runs the real models and ``bentoml serve``; it needs
``../shared`` (override with ``REID_SHARED_DIR``): under ``CI=true`` its absence fails the run,
elsewhere those tests skip with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tools.shared import CALIBRATION_CROPS, MODELS, SHARED

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


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared``, or a skip saying where it was looked for."""
    if not MODELS.is_dir():
        pytest.skip(f"shared models not found at {MODELS} (set REID_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def model_store(shared) -> Path:
    """The test run's BentoML store, holding the shared detector and embedder."""
    from reid.models.importer import main as import_models

    assert import_models(["--from", str(MODELS), "--calibration-crops", str(CALIBRATION_CROPS)]) == 0
    return Path(os.environ["BENTOML_HOME"])


@pytest.fixture(scope="session")
def settings():
    from reid.config import Settings

    return Settings()


@pytest.fixture(scope="session")
def local_reid(model_store, settings):
    from reid.models.loading import LocalReID

    return LocalReID(settings)


@pytest.fixture(scope="session")
def server(model_store):
    """A live service with the shared models, shared by the end-to-end tests."""
    from tools.processes import serve_bentoml

    with serve_bentoml() as running:
        yield running


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server's URL; under CI=true its absence fails the run (``.ci/run``
    installs it), elsewhere those tests skip."""
    from tools.postgres import postgres_binaries, postgres_server

    if postgres_binaries() is None and not IN_CI:
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    with postgres_server() as url:
        yield url
