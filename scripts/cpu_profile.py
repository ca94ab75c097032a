"""Where the CPU goes: CPU milliseconds per request in each service process under load.

    python scripts/cpu_profile.py --json profile.json            # the default configuration
    python scripts/cpu_profile.py --set REID_EMBEDDER_THREADS=1  # a variant

Starts the service, drives 8 clients over 1080p MOT17 pairs, reads each process's CPU time
before and after, then measures the one-client median latency.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reid_devtools.load import measure_load, mot17_pairs
from reid_devtools.processes import serve_bentoml
from reid_devtools.reports import publish


def main(argv: list[str] | None = None) -> int:
    import psutil

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="env", action="append", default=[], metavar="REID_KEY=VALUE")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    pairs = mot17_pairs(args.data)
    with serve_bentoml(env=dict(item.split("=", 1) for item in args.env)) as server:
        measure_load(server.url, pairs, 2, 10, 120)
        procs = {name: psutil.Process(pid) for name, pid in server.processes().items()}
        before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        loaded = measure_load(server.url, pairs, 8, args.requests, 300)
        after = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        single = measure_load(server.url, pairs, 1, 20, 300)
    report = {
        "settings": args.env,
        "cpu_ms_per_request": {n: round((after[n] - before[n]) / loaded["ok"] * 1000) for n in procs if n != "main"},
        "rps_8_clients": round(loaded["rps"], 2),
        "p50_ms_1_client": round(single["p50_ms"]),
    }
    publish(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
