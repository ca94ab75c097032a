"""Attacks that are more than one request: connections that trickle their head or body, floods
of unknown paths, and bursts of heavy uploads, each run by background threads against a live
server until stopped. Used by scripts/attack.py, scripts/soak.py and the tests.

    with Attack.slow_uploads(url, connections=16) as attack:
        ...                     # meanwhile, measure the others' requests
    print(attack.outcomes)      # Counter of what the attackers got
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit


class Attack:
    """``connections`` threads each running ``one(url, stop) -> outcome`` again and again until
    stopped; ``outcomes`` counts what they got, ``busy`` how many are inside ``one`` now (for
    the trickling attacks: how many connections are held open)."""

    def __init__(self, url: str, one: Callable[[str, threading.Event], str], connections: int) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.busy = 0
        self._one = one
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.busy += 1
            try:
                outcome = self._one(self.url, self._stop)
            finally:
                with self._lock:
                    self.busy -= 1
            with self._lock:
                self.outcomes[outcome] += 1

    def wait(self, condition: Callable[[Attack], bool], timeout: float) -> bool:
        """Whether ``condition(self)`` came true within ``timeout`` seconds (polled)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                met = condition(self)
            if met or time.monotonic() >= deadline:
                return met
            time.sleep(0.02)

    def __enter__(self) -> Attack:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @classmethod
    def slow_uploads(cls, url: str, connections: int = 16, interval: float = 0.5) -> Attack:
        """Bodies that declare 1 MB and send a byte every ``interval`` seconds."""
        return cls(url, lambda u, stop: _trickle_body(u, stop, interval), connections)

    @classmethod
    def slowloris(cls, url: str, connections: int = 50, interval: float = 1.0) -> Attack:
        """Request heads sent a byte every ``interval`` seconds, never finished."""
        return cls(url, lambda u, stop: _trickle_head(u, stop, interval), connections)

    @classmethod
    def unknown_paths(cls, url: str, connections: int = 2) -> Attack:
        """GETs of random paths, as fast as they are answered."""
        return cls(url, _unknown_path, connections)

    @classmethod
    def uploads(cls, url: str, kwargs: dict, connections: int = 4, path: str = "/compare") -> Attack:
        """The same POST (``httpx.post`` arguments) again and again."""
        return cls(url, lambda u, stop: _post(u + path, kwargs), connections)


def connect(url: str) -> socket.socket:
    """A socket to the server of ``url``."""
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=60)
    return connection


def _status(connection: socket.socket) -> str:
    try:
        head = connection.recv(4096)
    except OSError as error:
        return type(error).__name__
    if not head:
        return "closed"
    return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "garbage"


def _trickle_body(url: str, stop: threading.Event, interval: float) -> str:
    head = (
        b"POST /compare HTTP/1.1\r\nHost: attack\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    with connect(url) as connection:
        connection.sendall(head)
        while not stop.is_set():
            try:
                connection.send(b"-")
            except OSError:
                return "closed"
            if _answered(connection, stop, interval):
                try:
                    answer = connection.recv(4096)
                except OSError:
                    return "closed"
                return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    return "stopped"


def _trickle_head(url: str, stop: threading.Event, interval: float) -> str:
    head = b"POST /compare HTTP/1.1\r\nHost: attack\r\nX-Padding: " + b"a" * 10_000
    started = time.monotonic()
    with connect(url) as connection:
        for byte in head:
            if stop.is_set():
                return "stopped"
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return f"closed within {_bucket(time.monotonic() - started)}"
            # Whatever the server says is not read; its closing the connection ends the attack at once.
            if _answered(connection, stop, interval) and _closed(connection):
                return f"closed within {_bucket(time.monotonic() - started)}"
        return _status(connection)


def _answered(connection: socket.socket, stop: threading.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` (less once stopped) for the server to send or close: whether it did."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if select.select([connection], [], [], min(left, 0.1))[0]:
            return True
    return False


def _closed(connection: socket.socket) -> bool:
    """Whether the server closed ``connection`` (what it sent before is read and dropped)."""
    try:
        return connection.recv(65536) == b""
    except OSError:
        return True


def _bucket(seconds: float) -> str:
    return next(f"{limit} s" for limit in (5, 10, 15, 30, 60, 1e9) if seconds <= limit)


def _unknown_path(url: str, stop: threading.Event) -> str:
    import httpx

    path = "/" + "/".join(random.choice(["a", "b", "x", "admin", ".env", "..", "%2e"]) for _ in range(3))
    try:
        return str(httpx.get(f"{url}{path}{random.randrange(10**9)}", timeout=30).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


def _post(url: str, kwargs: dict) -> str:
    import httpx

    try:
        return str(httpx.post(url, timeout=120, **kwargs).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__
