"""Servers as child processes, for tests, benchmarks and soak runs: start, wait until ready,
watch their memory, stop.

Stopping reaches every process a server started. BentoML's arbiter (circus) starts each worker
in a session and process group of its own (``os.setsid``), so a signal to the server's process
group misses them, and once the arbiter is gone they belong to PID 1 and no tree walk finds them.
So a server's tree is walked before any signal, every process of it is marked by an environment
variable of its own (:data:`TREE_MARK`, inherited by whatever it starts), and after the signal
nothing of the tree may be left: :meth:`ServerProcess.stop` escalates to SIGKILL,
:meth:`ServerProcess.kill` raises :class:`LeftoverProcessError` naming any survivor.
:func:`leftover_processes` names what any server (or anything under a run's mark) left behind,
for the end of a test session."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A service that failed to start: its app's start-up raised (Starlette's words), or its worker
# died of an exception before it served (the traceback passes through BentoML's worker main).
STARTUP_FAILED = re.compile(
    r"Application startup failed|_bentoml_impl/worker/service\.py\", line \d+, in main$", re.MULTILINE
)
# Each server's processes carry ``TREE_MARK=<token>`` in their environment.
TREE_MARK = "REID_PROCESS_TREE"

# Every process seen in a started server's tree, for the leftover check: pid -> (process, name).
_SEEN: dict[int, tuple[object, str]] = {}
_RUNNING: list[ServerProcess] = []
_LOCK = threading.Lock()


class LeftoverProcessError(RuntimeError):
    """Processes still alive after they were killed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def describe(proc) -> str:
    """``pid name args`` of a process, BentoML workers by their service."""
    import psutil

    try:
        args = proc.cmdline()
    except psutil.Error:
        args = []
    if "--service-name" in args:
        name = args[args.index("--service-name") + 1]
        worker = args[args.index("--worker-id") + 1] if "--worker-id" in args else "1"
        return f"{proc.pid} ({name}#{worker}) {' '.join(args)[:300]}"
    return f"{proc.pid} {' '.join(args)[:300]}"


def alive(proc) -> bool:
    """Running, and not a zombie waiting for a parent (PID 1 may be slow to reap orphans)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def marked(name: str, value: str) -> list:
    """Every process (but this one) whose environment holds ``name=value``."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(name) == value:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def remember(procs: Iterable) -> None:
    """Note processes for the leftover check; a process is known by pid and start time."""
    with _LOCK:
        for proc in procs:
            known = _SEEN.get(proc.pid)
            if known is None or known[0] != proc:
                _SEEN[proc.pid] = (proc, describe(proc))


def wait_gone(procs: Iterable, timeout: float) -> list:
    """The processes still alive after up to ``timeout`` seconds."""
    left = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        left = [proc for proc in left if alive(proc)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def kill_all(procs: Iterable, timeout: float = 10.0) -> list:
    """SIGKILL every process at once, with the process group each leads; what is still alive after
    ``timeout`` seconds. Stopped first (SIGSTOP), so that none starts or restarts another on the way."""
    import psutil

    procs = [proc for proc in procs if alive(proc)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.suspend()
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            if proc.is_running() and os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    return wait_gone(procs, timeout)


def leftover_processes(mark: tuple[str, str] | None = None) -> list:
    """Processes a server started (or, with ``mark``, any process whose environment holds
    ``name=value`` and is no child of this one) that are still alive."""
    import psutil

    with _LOCK:
        left = {pid: proc for pid, (proc, _) in _SEEN.items() if alive(proc)}
    if mark:
        own = {child.pid for child in psutil.Process().children(recursive=True)}
        left.update({proc.pid: proc for proc in marked(*mark) if proc.pid not in own and alive(proc)})
    left.pop(os.getpid(), None)
    return list(left.values())


def name_of(proc) -> str:
    with _LOCK:
        known = _SEEN.get(proc.pid)
    return known[1] if known and known[0] == proc else describe(proc)


class ServerProcess:
    """A server on a loopback port, with everything it starts; ready when ``ready_path`` answers 200.

    Stopped by ``with``, :meth:`stop` or :meth:`kill`, and, failing those, when this interpreter
    exits (normally, by an exception, or by SIGTERM, which raises KeyboardInterrupt here when
    nothing else handles it)."""

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
        self.token = uuid.uuid4().hex
        self._pids: dict[int, object] = {}  # every process seen in the tree
        _stop_on_exit()
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **(env or {}), TREE_MARK: self.token},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _LOCK:
            _RUNNING.append(self)
        try:
            self._wait_ready(command, httpx, started + startup_timeout, ready_path, startup_timeout)
        except BaseException:
            self.kill(check=False)
            raise

    def _wait_ready(self, command, httpx, deadline: float, ready_path: str, startup_timeout: float) -> None:
        started = deadline - startup_timeout
        while time.monotonic() < deadline:
            self.tree(scan=False)
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {self.process.returncode}:\n{self.log_tail()}")
            if STARTUP_FAILED.search(self.log_path.read_text(errors="replace")):
                # BentoML restarts a worker that failed to start, forever: give up at once.
                raise RuntimeError(f"a service failed to start:\n{self.log_tail(200)}")
            try:
                if httpx.get(self.url + ready_path, timeout=10).status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    self.tree(scan=False)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{command[0]} not ready in {startup_timeout} s:\n{self.log_tail(200)}")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def tree(self, scan: bool = True) -> list:
        """Every live process of this server: the one started, its descendants, every process
        seen in the tree before, and (``scan``) any process holding this server's mark (a worker
        whose arbiter is gone belongs to PID 1); all of them remembered for a later stop."""
        import psutil

        found = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            if alive(root):
                found = [root, *root.children(recursive=True)]
        if scan:
            found += marked(TREE_MARK, self.token)
        for proc in found:
            if proc.pid not in self._pids or self._pids[proc.pid] != proc:
                self._pids[proc.pid] = proc
        remember(found)
        return [proc for proc in self._pids.values() if alive(proc)]

    def processes(self) -> dict[str, int]:
        """``{name: pid}`` of the server and its children; BentoML workers are named by service."""
        import psutil

        root = psutil.Process(self.process.pid)
        procs = [root, *root.children(recursive=True)]
        self.tree(scan=False)
        named = {}
        for proc in procs:
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

    def stop(self, timeout: float = 30.0, grace: float = 10.0) -> None:
        """SIGTERM to the server, which stops its workers; the server still running after
        ``timeout`` seconds, or a worker ``grace`` seconds after the server, is killed (:meth:`kill`)."""
        procs = self.tree()  # before the signal: once the arbiter is gone, its workers are orphans
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
            wait_gone(procs, timeout=grace)
        self.kill()

    def kill(self, check: bool = True) -> None:
        """SIGKILL every process of the server at once: no shutdown, nothing flushed on the way
        out. Raises :class:`LeftoverProcessError` naming any process still alive after it."""
        left = kill_all(self.tree())
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)  # reaped, not left a zombie
        # A process started between the walk and the signal holds the mark: one more round.
        if not left:
            left = kill_all(self.tree())
        with _LOCK:
            if self in _RUNNING and not left:
                _RUNNING.remove(self)
        if left and check:
            raise LeftoverProcessError(f"still alive after SIGKILL: {'; '.join(name_of(proc) for proc in left)}")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop_all_servers() -> None:
    with _LOCK:
        running = list(_RUNNING)
    for server in running:
        with contextlib.suppress(Exception):
            server.kill(check=False)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


_exit_hooks_installed = False


def _stop_on_exit() -> None:
    """Once: kill still-running servers at exit, and turn SIGTERM into KeyboardInterrupt (when
    nothing else handles it) so that ``with`` blocks and fixtures stop their servers."""
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    atexit.register(_stop_all_servers)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


# For a server whose tests send one request at a time: no calls that train the adaptive batchers
# at start (about 10 s of CPU each time on 2 cores), which only bursts need.
ONE_AT_A_TIME = {"REID_WARMUP_CALLS": "0"}


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


def declared_memory_mb(service_name: str = "ReID") -> float:
    """A service's memory as service.py declares it (``resources.memory``), in MiB."""
    import importlib
    import re

    if str(ROOT) not in sys.path:  # a script's path holds scripts/, not the project
        sys.path.insert(0, str(ROOT))
    service = importlib.import_module("service")
    text = getattr(service, service_name).config["resources"]["memory"]
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", text).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


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


class Script:
    """``python scripts/<name>.py ARGS`` of this project, started as a user would run it, in the
    background: its output goes to files (a pipe left unread would stall it), :meth:`result`
    waits for it."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.command = [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args]
        self._output = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=self._output[0], stderr=self._output[1])
        self._done: subprocess.CompletedProcess | None = None

    def result(self, timeout: float = 1800) -> subprocess.CompletedProcess:
        """Its output once it has ended, a failure raised with it. Past ``timeout`` (or
        interrupted) it is stopped (:meth:`stop`)."""
        if self._done is None:
            try:
                self.process.wait(timeout=timeout)
            except BaseException:
                self.stop()
                raise
            stdout, stderr = (self._read(file) for file in self._output)
            self._done = subprocess.CompletedProcess(self.command, self.process.returncode, stdout, stderr)
        if self._done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.command)} exited with {self._done.returncode}:\n"
                f"{self._done.stdout[-3000:]}\n{self._done.stderr[-3000:]}"
            )
        return self._done

    def stop(self) -> None:
        """SIGTERM first, so that it stops the servers it started; SIGKILL a minute later."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @staticmethod
    def _read(file) -> str:
        file.seek(0)
        return file.read().decode(errors="replace")


def run_script(name: str, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """``python scripts/<name>.py ARGS`` of this project, as a user would run it: :class:`Script`,
    waited for."""
    return Script(name, args).result(timeout)
