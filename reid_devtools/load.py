"""Closed-loop HTTP load over loopback, and the MOT17 frame pairs it sends, for the benchmark,
the soak, the attacks and the CPU profile."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    label: str
    kwargs: dict[str, Any]  # for httpx.Client.request: files, data, content, headers, params
    expected: int = 200  # the status it must get
    path: str = "/compare"
    method: str = "POST"


@dataclass(frozen=True)
class Outcome:
    request: Request
    status: int | str  # the HTTP status, or the name of the transport error
    seconds: float


def closed_loop(
    url: str, requests: Iterable[Request], clients: int, count: int, seconds: float
) -> tuple[list[Outcome], float]:
    """``clients`` threads, each sending its next request to the service at ``url`` as soon as its last one is
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
                    status = client.request(request.method, url + request.path, **request.kwargs).status_code
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


DEFAULT_PAIRS = [("MOT17-04-FRCNN", 1, 8), ("MOT17-02-FRCNN", 1, 4), ("MOT17-13-FRCNN", 1, 5)]


def mot17_pairs(data: Path) -> list[tuple[bytes, bytes]]:
    """The 1080p MOT17 frame pairs the benchmark, soak and attacks cycle (about 20 persons each)."""

    def frame(seq: str, number: int) -> bytes:
        return (data / "mot17" / seq / "img1" / f"{number:06d}.jpg").read_bytes()

    return [(frame(seq, a), frame(seq, b)) for seq, a, b in DEFAULT_PAIRS]


def folder_pairs(folder: Path) -> list[tuple[bytes, bytes]]:
    """The images of ``folder``, taken two by two."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [(a.read_bytes(), b.read_bytes()) for a, b in zip(files[::2], files[1::2])]


def pair_requests(pairs: list[tuple[bytes, bytes]]) -> Iterator[Request]:
    """The pairs as /compare requests, cycled without end."""
    for a, b in itertools.cycle(pairs):
        yield Request("pair", {"files": {"image1": ("a.jpg", a, "image/jpeg"), "image2": ("b.jpg", b, "image/jpeg")}})


def measure_load(url: str, pairs, clients: int, requests: int, seconds: float) -> dict:
    """Requests/s and latency percentiles of ``clients`` closed-loop clients on the pairs."""
    import numpy as np

    outcomes, wall = closed_loop(url, pair_requests(pairs), clients, requests, seconds)
    statuses = Counter(outcome.status for outcome in outcomes)
    ms = np.array([outcome.seconds for outcome in outcomes if outcome.status == 200]) * 1000
    return {
        "clients": clients,
        "requests": len(outcomes),
        "ok": statuses.get(200, 0),
        "errors": {str(k): v for k, v in statuses.items() if k != 200},
        "rps": statuses.get(200, 0) / wall,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
    }


def light_compare_ms(url: str, count: int = 10) -> float:
    """The median time, in ms, of a compare of the hall's two frames, sent one at a time."""
    import httpx
    import numpy as np

    from reid_devtools.shared import hall_pair

    pair = hall_pair()
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            assert client.post(f"{url}/compare", files=pair).status_code == 200
            times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def group_burst(url: str, data: Path, requests: int, clients: int) -> dict:
    """``requests`` /group of 16 crowded 1080p MOT17 frames from ``clients`` at once: the statuses."""
    frames = sorted((data / "mot17" / "MOT17-04-FRCNN" / "img1").iterdir())[:16]
    files = [("images", (frame.name, frame.read_bytes(), "image/jpeg")) for frame in frames]
    group = Request("group", {"files": files}, 200, "/group")
    outcomes, wall = closed_loop(url, itertools.repeat(group), clients, requests, 600)
    return {"requests": len(outcomes), "seconds": wall, "statuses": dict(Counter(str(o.status) for o in outcomes))}
