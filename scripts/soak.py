"""A bounded soak over loopback: real MOT17 frame pairs to /compare and enrolments to the
gallery (with an Idempotency-Key, some sent twice as a retrying client would) mixed with hostile
requests (reid_devtools/hostile.py: the /compare corpus and round three's front-door cases), while
attackers trickle bodies and request heads and flood unknown paths (reid_devtools/attacks.py); then a
burst of /group requests of 16 frames; memory, statuses, the gallery and recovery watched.

    python scripts/soak.py --requests 2000 --clients 8 --minutes 30 --json soak.json

Records the RSS of every service process at rest after a warm-up (the same mix at the same
concurrency, attackers included) and after the soak, the peaks of both against the entry's
declared memory, every status (each request's expected status is known), what the attackers
got, the size of /metrics, the p99 latency of the real pairs, the upload budget still held at
the end, whether every enrolment answered 200 is in the gallery exactly once and no refused one
is, and a light compare's median before the load and 10 s after it. Exits 1 on any 5xx or
unexpected status, RSS growth over --max-growth, an entry peak over its declared memory, a
budget still held, a gallery that disagrees with its answers, or a compare over --max-slowdown
times slower after the load.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from reid_devtools.attacks import Attack
from reid_devtools.hostile import cases, front_door_cases
from reid_devtools.load import Outcome, Request, closed_loop, group_burst, light_compare_ms, mot17_pairs
from reid_devtools.processes import MemoryWatch, declared_memory_mb, serve_bentoml
from reid_devtools.reports import publish
from reid_devtools.shared import enrolment_form, person_photo

REAL_PAIR = "mot17 pair"
ENROLMENT = "enrolment"
ATTACKS = ("slow uploads", "slowloris", "unknown paths")
ENTRY = "ReID#1"


def workload(data: Path, bad_share: float, seed: int = 0, enrol_share: float = 0.1) -> Iterator[Request]:
    """An endless, reproducible stream of real pairs, enrolments (a tenth of them sent again,
    as a retry) and hostile requests."""
    pairs = [
        Request(REAL_PAIR, {"files": {"image1": ("a.jpg", a, "image/jpeg"), "image2": ("b.jpg", b, "image/jpeg")}})
        for a, b in mot17_pairs(data)
    ]
    photo = person_photo()
    hostile = [Request(*case) for case in cases()]
    hostile += [
        Request(name, kwargs, status, path, method) for name, method, path, kwargs, status in front_door_cases(photo)
    ]
    rng = random.Random(seed)
    sent: list[Request] = []
    while True:
        draw = rng.random()
        if draw < bad_share:
            yield rng.choice(hostile)
        elif draw < bad_share + enrol_share:
            if sent and rng.random() < 0.1:
                yield rng.choice(sent)
                continue
            sent.append(enrolment(photo, f"soak-{seed}-{len(sent)}"))
            yield sent[-1]
        else:
            yield rng.choice(pairs)


def enrolment(photo: bytes, key: str) -> Request:
    """An enrolment of the photo's person labelled, and keyed, ``key``."""
    form = enrolment_form(photo, label=key)
    return Request(ENROLMENT, {**form, "headers": {"idempotency-key": key}}, 200, "/gallery/persons")


def gallery_agrees(url: str, outcomes: list[Outcome]) -> dict:
    """Whether every enrolment answered 200 is in the gallery exactly once and no refused one is."""
    answered: dict[str, set] = {}
    for outcome in outcomes:
        if outcome.request.label == ENROLMENT:
            answered.setdefault(outcome.request.kwargs["data"]["label"], set()).add(outcome.status)
    stored: Counter[str] = Counter()
    offset = 0
    with httpx.Client(timeout=60) as client:
        while True:
            page = client.get(f"{url}/gallery/persons", params={"offset": offset, "limit": 100}).json()
            stored.update(person["label"] for person in page["persons"])
            offset += 100
            if offset >= page["total"]:
                break
    accepted = {label for label, statuses in answered.items() if 200 in statuses}
    return {
        "enrolments": len(answered),
        "accepted": len(accepted),
        "not_once": sorted(label for label in accepted if stored[label] != 1),
        "refused_but_stored": sorted(label for label in set(answered) - accepted if stored[label]),
    }


def upload_bytes_held(url: str) -> float | None:
    """reid_upload_bytes_held on /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(r"^reid_upload_bytes_held(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


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
        outcomes, wall = closed_loop(url, stream, args.clients, requests, args.minutes * 60)
    unexpected = Counter(f"{o.request.label}: {o.status}" for o in outcomes if o.status != o.request.expected)
    statuses = Counter(outcome.status for outcome in outcomes)
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
        "gallery": gallery_agrees(url, outcomes),
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
    parser.add_argument("--group-burst", type=int, default=16, help="/group requests of 16 frames after the soak")
    parser.add_argument(
        "--group-clients", type=int, default=4, help="sending them at once (8 pass the detector's queue deadline here)"
    )
    parser.add_argument("--max-slowdown", type=float, default=1.5, help="a light compare 10 s after the load vs before")
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
        before_ms = light_compare_ms(url)
        report = soak(url, args, args.requests, seed=0)
        report["warmup"] = {k: warmup[k] for k in ("requests", "statuses", "unexpected", "server_errors")}
        report["group_burst"] = group_burst(url, args.data, args.group_burst, args.group_clients)
        time.sleep(10)
        after_ms = light_compare_ms(url)
        report["light_compare_ms"] = {"before": before_ms, "10 s after": after_ms, "ratio": after_ms / before_ms}
        report["upload_bytes_held_at_end"] = upload_bytes_held(url)
        if watch:
            end = settled(watch)
            soak_peak = watch.stop()
            report["rss_mb_after_warmup"] = {k: round(v / 2**20) for k, v in baseline.items()}
            report["rss_mb_end"] = {k: round(v / 2**20) for k, v in end.items()}
            report["rss_growth"] = {k: end[k] / baseline[k] - 1 for k in end if baseline.get(k)}
            report["peak_rss_mb_warmup"] = {k: round(v / 2**20) for k, v in warmup_peak.items()}
            report["peak_rss_mb_soak"] = {k: round(v / 2**20) for k, v in soak_peak.items()}
            report["entry_declared_memory_mb"] = declared_memory_mb()
        return report

    if args.url:
        report = run(args.url)
    else:
        with serve_bentoml() as server:
            report = run(server.url, server)
    publish(report, args.json)
    return 0 if not failures(report, args) else 1


def failures(report: dict, args) -> list[str]:
    """What the soak found wrong, in words."""
    found = []
    for phase in (report["warmup"], report):
        if phase["server_errors"] or phase["unexpected"]:
            found.append(f"{phase['server_errors']} 5xx, unexpected: {phase['unexpected']}")
    if any(g > args.max_growth for g in report.get("rss_growth", {}).values()):
        found.append(f"RSS grew: {report['rss_growth']}")
    peaks = [report.get(k, {}).get(ENTRY, 0) for k in ("peak_rss_mb_warmup", "peak_rss_mb_soak")]
    if "entry_declared_memory_mb" in report and max(peaks) > report["entry_declared_memory_mb"]:
        found.append(f"entry peak {max(peaks)} MiB over its declared {report['entry_declared_memory_mb']:.0f}")
    if report["upload_bytes_held_at_end"] != 0:
        found.append(f"upload budget still held: {report['upload_bytes_held_at_end']}")
    if report["gallery"]["not_once"] or report["gallery"]["refused_but_stored"]:
        found.append(f"gallery disagrees with its answers: {report['gallery']}")
    if set(report["group_burst"]["statuses"]) != {"200"}:
        found.append(f"group burst: {report['group_burst']['statuses']}")
    if report["light_compare_ms"]["ratio"] > args.max_slowdown:
        found.append(f"a compare is {report['light_compare_ms']['ratio']:.2f} times slower after the load")
    for line in found:
        print("FAILED:", line)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
