"""Back to normal after a load: a light compare (the two-camera hall's two frames, one request at
a time) timed before any load, then 10 s after each of two bursts: /group requests of 16
crowded 1080p MOT17 frames from 8 clients, and 64 compares of crowded MOT17 pairs from 8 clients.

    python scripts/recovery.py --json docs/recovery.json
    python scripts/recovery.py --env REID_BATCH_MAX_WAIT_MS=60000   # BentoML's batcher unbounded

Starts the service (`bentoml serve .`, with ``--env`` settings). Exits 1 when a light compare's
median 10 s after a burst is over --max-slowdown times its median before.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reid_devtools.load import closed_loop, group_burst, light_compare_ms, mot17_pairs, pair_requests
from reid_devtools.processes import serve_bentoml
from reid_devtools.reports import publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the service, repeatable")
    parser.add_argument("--groups", type=int, default=16, help="/group requests in the first burst")
    parser.add_argument("--compares", type=int, default=64, help="compares in the second burst")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--after", type=float, default=10.0, help="seconds between a burst's end and the timing")
    parser.add_argument("--max-slowdown", type=float, default=1.5)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with serve_bentoml(env=env) as server:
        url = server.url
        light_compare_ms(url, count=3)  # warm
        report: dict = {"env": env, "before_ms": light_compare_ms(url)}
        report["group_burst"] = group_burst(url, args.data, args.groups, args.clients)
        time.sleep(args.after)
        report["after_groups_ms"] = light_compare_ms(url)
        outcomes, wall = closed_loop(url, pair_requests(mot17_pairs(args.data)), args.clients, args.compares, 600)
        report["compare_burst"] = {"requests": len(outcomes), "seconds": wall}
        time.sleep(args.after)
        report["after_compares_ms"] = light_compare_ms(url)
    worst = max(report["after_groups_ms"], report["after_compares_ms"]) / report["before_ms"]
    report["worst_ratio"] = worst
    publish(report, args.json)
    return 0 if worst <= args.max_slowdown else 1


if __name__ == "__main__":
    raise SystemExit(main())
