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
    from scripts.import_models import main as import_models

    assert import_models(["--from", str(MODELS)]) == 0
    return Path(os.environ["BENTOML_HOME"])


@pytest.fixture(scope="session")
def settings():
    from reid.config import Settings

    return Settings()


@pytest.fixture(scope="session")
def local_reid(model_store, settings):
    from reid.runtime import LocalReID

    return LocalReID(settings)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``bentoml serve .`` in a process group of its own, on a free loopback port."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 300.0) -> None:
        import subprocess
        import sys
        import time

        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="reid-serve-", suffix=".log")[1])
        bentoml_cli = Path(sys.executable).parent / "bentoml"
        self.process = subprocess.Popen(
            [str(bentoml_cli), "serve", ".", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready in {startup_timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        import signal
        import subprocess

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def server(model_store):
    """A live service with the shared models, shared by the end-to-end tests."""
    running = Server()
    yield running
    running.stop()
