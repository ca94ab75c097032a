"""reid_devtools/processes.py stops every process a server started, wherever its workers are: in process
groups and sessions of their own (as BentoML's arbiter starts them), or orphaned by the arbiter."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import psutil
import pytest

from reid_devtools.processes import ServerProcess, alive, free_port, leftover_processes

# An arbiter as circus is one: it serves /readyz and starts its workers with os.setsid; each
# worker starts a child of its own, and one also a daemon (a grandchild orphaned at once).
ARBITER = textwrap.dedent(
    """
    import http.server, os, signal, subprocess, sys

    SLEEP = "import time; time.sleep(600)"
    WORKER = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {SLEEP!r}]); {SLEEP}"
    DAEMON = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {SLEEP!r}], start_new_session=True)"
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, "--service-name", name], preexec_fn=os.setsid)
        for name in ("Model", "Entry")
    ]
    subprocess.run([sys.executable, "-c", DAEMON])
    if sys.argv[2] == "orphans":  # SIGTERM: gone at once, without stopping its workers
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
    """
)


def leftovers_since(before: set[int]) -> list:
    """What :func:`leftover_processes` names beyond ``before``: servers the rest of the test run
    keeps alive (a session's shared server) are not this test's."""
    return [proc for proc in leftover_processes() if proc.pid not in before]


def running() -> set[int]:
    return {proc.pid for proc in leftover_processes()}


def start(tmp_path, mode: str = "workers") -> ServerProcess:
    script = tmp_path / "arbiter.py"
    script.write_text(ARBITER)
    port = free_port()
    server = ServerProcess([sys.executable, str(script), str(port), mode], port, startup_timeout=30)
    deadline = time.monotonic() + 30
    while len(server.tree()) < 6 and time.monotonic() < deadline:  # arbiter, 2 workers, 2 children, daemon
        time.sleep(0.05)
    return server


def test_kill_reaches_workers_in_process_groups_of_their_own(tmp_path):
    before = running()
    server = start(tmp_path)
    every = server.tree()
    assert len(every) == 6
    named = server.processes()
    assert set(named) == {"main", "Model#1", "Entry#1"}
    assert os.getpgid(named["Entry#1"]) != os.getpgid(named["main"])  # a killpg of the server misses it
    server.kill()
    assert [proc for proc in every if alive(proc)] == []
    assert server.process.returncode == -signal.SIGKILL
    assert leftovers_since(before) == []


def test_stop_reaches_workers_the_server_left_behind(tmp_path):
    server = start(tmp_path, "orphans")
    every = server.tree()
    server.stop(grace=0.5)
    assert server.process.returncode == 0, "stopped by SIGTERM"
    assert [proc for proc in every if alive(proc)] == []


def test_workers_orphaned_by_a_killed_arbiter_are_named_and_then_killed(tmp_path):
    before = running()
    server = start(tmp_path)
    every = server.tree()
    os.killpg(server.process.pid, signal.SIGKILL)  # what stop() and kill() did before
    server.process.wait()
    left = {proc.pid for proc in leftovers_since(before)}
    assert left and left == {proc.pid for proc in every if alive(proc)}
    assert all(psutil.Process(pid).ppid() != server.process.pid for pid in left), "orphans, out of the tree"
    server.stop(grace=0.5)
    assert leftovers_since(before) == []


def test_a_server_that_never_gets_ready_leaves_nothing(tmp_path):
    before = running()
    script = tmp_path / "arbiter.py"
    script.write_text(ARBITER)
    port = free_port()
    with pytest.raises(RuntimeError, match="not ready"):
        ServerProcess([sys.executable, str(script), str(port), "workers"], port, ready_path="/never", startup_timeout=3)
    assert leftovers_since(before) == []
