"""A bounded soak of POST /compare over loopback: real MOT17 frame pairs mixed with hostile
requests (tools/hostile.py), while attackers trickle bodies and request heads and flood
unknown paths (tools/attacks.py); memory and statuses watched.

    python scripts/soak.py --requests 2000 --clients 8 --minutes 30 --json soak.json

Records the RSS of every service process at rest after a warm-up (the same mix at the same
concurrency, attackers included) and after the soak, the peaks of both, every status (each
request's expected status is known), what the attackers got, the size of /metrics, and the p99
latency of the real pairs. Exits 1 on any 5xx or unexpected status, or RSS growth over
--max-growth.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from tools.attacks import Attack
from tools.hostile import cases
from tools.load import Request, closed_loop, mot17_pairs
from tools.processes import MemoryWatch, serve_bentoml

REAL_PAIR = "mot17 pair"
ATTACKS = ("slow uploads", "slowloris", "unknown paths")


def workload(data: Path, bad_share: float, seed: int = 0) -> Iterator[Request]:
    """An endless, reproducible stream of real pairs and hostile requests."""
    pairs = [
        Request(REAL_PAIR, {"files": {"image1": ("a.jpg", a, "image/jpeg"), "image2": ("b.jpg", b, "image/jpeg")}})
        for a, b in mot17_pairs(data)
    ]
    hostile = [Request(*case) for case in cases()]
    rng = random.Random(seed)
    while True:
        yield rng.choice(hostile) if rng.random() < bad_share else rng.choice(pairs)


def attackers(url: str, args) -> list[Attack]:
    if not args.attacks:
        return []
    return [
        Attack.slow_uploads(url, connections=4),
        Attack.slowloris(url, connections=10),
        Attack.unknown_paths(url, connections=1),
    ]


def soak(url: str, args, requests: int, seed: int) -> dict:
    stream = workload(args.data, args.bad_share, seed)
    with contextlib.ExitStack() as stack:
        attacks = [stack.enter_context(attack) for attack in attackers(url, args)]
        outcomes, wall = closed_loop(f"{url}/compare", stream, args.clients, requests, args.minutes * 60)
    statuses = Counter(outcome.status for outcome in outcomes)
    unexpected = Counter(f"{o.request.label}: {o.status}" for o in outcomes if o.status != o.request.expected)
    latencies = [o.seconds for o in outcomes if o.request.label == REAL_PAIR and o.status == 200]
    return {
        "requests": len(outcomes),
        "seconds": wall,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "unexpected": dict(unexpected),
        "server_errors": sum(v for k, v in statuses.items() if not isinstance(k, int) or k >= 500),
        "p99_ms": float(np.percentile(np.array(latencies) * 1000, 99)) if latencies else None,
        "attackers": {name: dict(attack.outcomes) for name, attack in zip(ATTACKS, attacks)},
        "metrics_bytes": len(httpx.get(f"{url}/metrics", timeout=30).content),
    }


def settled(watch: MemoryWatch | None, seconds: float = 3.0) -> dict[str, int]:
    """RSS of every process once the last requests' memory has been released."""
    if watch is None:
        return {}
    time.sleep(seconds)
    return watch.sample()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="soak this running service instead of starting one (no RSS then)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup", type=int, default=600, help="requests of the same mix before the RSS baseline")
    parser.add_argument("--bad-share", type=float, default=0.3, help="share of hostile requests")
    parser.add_argument("--no-attacks", dest="attacks", action="store_false", help="no trickling or flooding attackers")
    parser.add_argument("--max-growth", type=float, default=0.10, help="largest RSS growth allowed after warm-up")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def run(url: str, server=None) -> dict:
        # Warm up with the same mix at the same concurrency: batch sizes, thread pools and
        # allocator arenas grow to what that load needs. RSS swings by a hundred megabytes with
        # the requests in flight, so growth compares the idle RSS a moment after each phase;
        # the peaks are reported beside it.
        watch = MemoryWatch(server.processes()) if server else None
        warmup = soak(url, args, args.warmup, seed=1)
        baseline = settled(watch)
        warmup_peak = watch.reset_peak() if watch else {}
        report = soak(url, args, args.requests, seed=0)
        report["warmup_server_errors"] = warmup["server_errors"]
        if watch:
            end = settled(watch)
            soak_peak = watch.stop()
            report["rss_mb_after_warmup"] = {k: round(v / 2**20) for k, v in baseline.items()}
            report["rss_mb_end"] = {k: round(v / 2**20) for k, v in end.items()}
            report["rss_growth"] = {k: end[k] / baseline[k] - 1 for k in end if baseline.get(k)}
            report["peak_rss_mb_warmup"] = {k: round(v / 2**20) for k, v in warmup_peak.items()}
            report["peak_rss_mb_soak"] = {k: round(v / 2**20) for k, v in soak_peak.items()}
        return report

    if args.url:
        report = run(args.url)
    else:
        with serve_bentoml() as server:
            report = run(server.url, server)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    growth_ok = all(g <= args.max_growth for g in report.get("rss_growth", {}).values())
    return 0 if report["server_errors"] == 0 and not report["unexpected"] and growth_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
