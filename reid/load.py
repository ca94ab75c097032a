"""Closed-loop HTTP load over loopback, for the benchmark, the soak and the CPU profile."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    label: str
    kwargs: dict[str, Any]  # for httpx.Client.post: files, data, headers
    expected: int = 200  # the status it must get


@dataclass(frozen=True)
class Outcome:
    request: Request
    status: int | str  # the HTTP status, or the name of the transport error
    seconds: float


def closed_loop(
    url: str, requests: Iterable[Request], clients: int, count: int, seconds: float
) -> tuple[list[Outcome], float]:
    """``clients`` threads, each POSTing its next request to ``url`` as soon as its last one is
    answered, until ``count`` requests are sent or ``seconds`` pass. The outcomes in the order
    they came back, and the wall time in seconds."""
    import httpx

    issued = itertools.islice(iter(requests), count)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < deadline:
                with lock:
                    request = next(issued, None)
                if request is None:
                    return
                started = time.perf_counter()
                try:
                    status = client.post(url, **request.kwargs).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                outcome = Outcome(request, status, time.perf_counter() - started)
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, time.perf_counter() - started
