"""Servers as child processes, for tests, benchmarks and soak runs: start, wait until ready,
watch their memory, stop."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_FAILED = "Application startup failed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server in a process group of its own on a loopback port; ready when ``ready_path`` answers 200."""

    def __init__(
        self,
        command: list[str],
        port: int,
        *,
        env: dict[str, str] | None = None,
        ready_path: str = "/readyz",
        startup_timeout: float = 300.0,
    ) -> None:
        import httpx

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(tempfile.mkstemp(prefix="reid-server-", suffix=".log")[1])
        started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {self.process.returncode}:\n{self.log_tail()}")
            if STARTUP_FAILED in self.log_path.read_text(errors="replace"):
                # BentoML restarts a worker that failed to start, forever: give up at once.
                self.stop()
                raise RuntimeError(f"a service failed to start:\n{self.log_tail(200)}")
            try:
                if httpx.get(self.url + ready_path, timeout=10).status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{command[0]} not ready in {startup_timeout} s:\n{self.log_tail(200)}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def processes(self) -> dict[str, int]:
        """``{name: pid}`` of the server and its children; BentoML workers are named by service."""
        import psutil

        root = psutil.Process(self.process.pid)
        named = {}
        for proc in [root, *root.children(recursive=True)]:
            try:
                args = proc.cmdline()
            except psutil.Error:
                continue
            if "--service-name" in args:
                name = args[args.index("--service-name") + 1]
                worker = args[args.index("--worker-id") + 1] if "--worker-id" in args else "1"
                named[f"{name}#{worker}"] = proc.pid
            elif proc.pid == root.pid:
                named["main"] = proc.pid
        return named

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the whole server at once: no shutdown, nothing flushed on the way out."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_bentoml(env: dict[str, str] | None = None, port: int | None = None, **options) -> ServerProcess:
    """``bentoml serve .`` of this project, in a BentoML home of its own that shares the model store."""
    env = dict(env or {})
    store = Path(env.get("BENTOML_HOME") or os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    home = private_bentoml_home(store)
    env["BENTOML_HOME"] = str(home)
    # A gallery of its own, unless the caller names one (a restart test names the same).
    env.setdefault("REID_GALLERY_URI", str(home / "gallery.sqlite3"))
    port = port or free_port()
    bentoml_cli = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml_cli), "serve", ".", "--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess(command, port, env=env, **options)


def private_bentoml_home(store: Path) -> Path:
    """A fresh BentoML home whose models and bentos are those of ``store``.

    BentoML keeps Prometheus' multiprocess files in ``$BENTOML_HOME/prometheus_multiproc_dir``
    and empties that folder whenever a server starts: servers sharing a home lose each other's
    metrics."""
    home = Path(tempfile.mkdtemp(prefix="reid-bentoml-home-"))
    for shared in ("models", "bentos"):
        (store / shared).mkdir(parents=True, exist_ok=True)
        (home / shared).symlink_to(store / shared, target_is_directory=True)
    atexit.register(shutil.rmtree, home, True)
    return home


class MemoryWatch:
    """Samples the resident memory of named processes in a background thread; keeps the peak."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        import threading

        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = {name: 0 for name in pids}
        self.last = dict(self.peak)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, int]:
        import psutil

        for name, proc in self.procs.items():
            try:
                self.last[name] = proc.memory_info().rss
            except psutil.Error:
                continue
            self.peak[name] = max(self.peak[name], self.last[name])
        return dict(self.last)

    def reset_peak(self) -> dict[str, int]:
        """The peaks so far; then start counting afresh."""
        peak, self.peak = self.peak, {name: 0 for name in self.peak}
        return peak

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sample()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak


def run_script(name: str, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """``python scripts/<name>.py ARGS`` of this project, as a user would run it; its output
    captured, a failure raised with it."""
    command = [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done
