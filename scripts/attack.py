"""Attacks against a live service while one honest client compares MOT17 frame pairs: what
the attackers get, whether the honest client is still served in its usual time, and the entry
process's peak memory under each.

    python scripts/attack.py --seconds 30 --json attacks.json

Starts the service (`bentoml serve .`), measures the honest client alone, then under each
attack in turn: trickled bodies, trickled request heads (slowloris), a flood of unknown paths,
decoding bombs (thousands of JPEG scans, a million JPEG segments, 19 MB of fill bytes, 200,000
PNG chunks), the memory attack of issue 10 (16-bit RGBA PNGs at the pixel cap, four at once),
and large images the service accepts (8-bit 40-megapixel PNGs, four at once). Exits 1 if the
honest client got anything but 200, or the entry's peak memory went over its declared memory
plus 50%.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np

from tools.attacks import Attack
from tools.hostile import (
    files,
    jpeg_of_empty_segments,
    jpeg_of_fill_bytes,
    jpeg_of_many_scans,
    png_at_pixel_cap,
    png_of_many_chunks,
)
from tools.load import closed_loop, mot17_pairs, pair_requests
from tools.processes import MemoryWatch, serve_bentoml

ENTRY = "ReID#1"
DECLARED_MEMORY_MB = 1024  # service.py: ReID resources.memory


def bombs() -> list[dict]:
    return [
        {"files": files(("a.jpg", jpeg_of_many_scans(), "image/jpeg"))},
        {"files": files(("a.jpg", jpeg_of_empty_segments(), "image/jpeg"))},
        {"files": files(("a.jpg", jpeg_of_fill_bytes(), "image/jpeg"))},
        {"files": files(("a.png", png_of_many_chunks(), "image/png"))},
    ]


def attacks(url: str) -> dict[str, object]:
    bomb = itertools.cycle(bombs())
    return {
        "none": None,
        "slow uploads (16 connections, a byte every 0.5 s)": Attack.slow_uploads(url, connections=16),
        "slowloris (50 connections, a head byte a second)": Attack.slowloris(url, connections=50),
        "unknown paths (2 clients, flat out)": Attack.unknown_paths(url, connections=2),
        "decoding bombs (4 clients)": Attack(url, lambda u, stop: _post(u, next(bomb)), 4),
        "16-bit RGBA PNGs at the pixel cap (4 clients)": Attack.uploads(
            url, {"files": files(("a.png", png_at_pixel_cap(), "image/png"))}, connections=4
        ),
        "8-bit RGB PNGs of 40 MP, accepted (4 clients)": Attack.uploads(
            url, {"files": files(("a.png", png_at_pixel_cap(depth=8, alpha=False), "image/png"))}, connections=4
        ),
    }


def _post(url: str, kwargs: dict) -> str:
    import httpx

    try:
        return str(httpx.post(f"{url}/compare", timeout=120, **kwargs).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


def honest(url: str, pairs, seconds: float) -> dict:
    outcomes, _ = closed_loop(f"{url}/compare", pair_requests(pairs), 1, 10_000, seconds)
    statuses = Counter(str(outcome.status) for outcome in outcomes)
    ms = np.array([outcome.seconds for outcome in outcomes if outcome.status == 200]) * 1000
    return {
        "requests": len(outcomes),
        "statuses": dict(statuses),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| attack | what the attackers got | honest requests | honest p50 ms | honest p95 ms | entry peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        got = ", ".join(f"{k}: {v}" for k, v in sorted(row["attackers"].items())) or "-"
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(row["honest"]["statuses"].items()))
        lines.append(
            f"| {row['attack']} | {got} | {statuses} | {row['honest']['p50_ms']:.0f} | "
            f"{row['honest']['p95_ms']:.0f} | {row['entry_peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each attack")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    pairs = mot17_pairs(args.data)
    rows = []
    with serve_bentoml() as server:
        watch = MemoryWatch(server.processes())
        closed_loop(f"{server.url}/compare", pair_requests(pairs), 1, 6, 60)  # warm
        for name, attack in attacks(server.url).items():
            watch.reset_peak()
            if attack is None:
                measured = honest(server.url, pairs, args.seconds)
                got: Counter = Counter()
            else:
                with attack:
                    measured = honest(server.url, pairs, args.seconds)
                got = attack.outcomes
            peak = watch.reset_peak()
            rows.append(
                {
                    "attack": name,
                    "attackers": dict(got),
                    "honest": measured,
                    "entry_peak_rss_mb": round(peak[ENTRY] / 2**20),
                }
            )
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
        watch.stop()
    report = {"declared_entry_memory_mb": DECLARED_MEMORY_MB, "attacks": rows}
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    honest_ok = all(set(row["honest"]["statuses"]) == {"200"} for row in rows)
    memory_ok = all(row["entry_peak_rss_mb"] <= 1.5 * DECLARED_MEMORY_MB for row in rows)
    return 0 if honest_ok and memory_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
