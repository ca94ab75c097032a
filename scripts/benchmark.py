"""Closed-loop load on POST /compare over loopback: ours against the plain pipeline, one run.

    python scripts/benchmark.py --clients 1 8 --requests 60 --json bench.json

Starts the service (`bentoml serve .`, or takes --url) and the plain pipeline
(reid_devtools/plain_pipeline.py, unless --no-plain) with the same model files, warms each up, then
for each client count drives C concurrent clients until N requests are done or the time bound
passes, cycling 1080p MOT17 frame pairs (or --pairs DIR). Reports requests/s, p50/p95/p99
latency, errors by status, peak RSS of every server process, time to /readyz, and each
service's figures over its plain pipeline's as ratios. Each system runs alone on the machine
while it is measured.

--variant NAME:KEY=VALUE,...   also measure the service with these REID_ settings
--plain NAME=DETECTOR[+LARGE],EMBEDDER,CONFIDENCE
                               the plain pipeline for variant NAME, with these files of --models
                               (+LARGE: a second detector for the tall persons, as the default has)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reid.models.sources import (
    DEFAULT_DETECTOR,
    DEFAULT_EMBEDDER,
    DEFAULT_LARGE_PERSON_DETECTOR,
    LARGE_PERSON_HEIGHT,
    calibrated,
)
from reid_devtools.load import closed_loop, folder_pairs, measure_load, mot17_pairs, pair_requests
from reid_devtools.processes import MemoryWatch, ServerProcess, free_port, serve_bentoml

# The default models' original files: the plain pipeline runs them as a plain script would.
# The detector's confidence is the service's: the one calibrated for it.
DEFAULT_CONFIDENCE = calibrated(DEFAULT_DETECTOR, "confidence")
DEFAULT_PLAIN = f"{DEFAULT_DETECTOR}+{DEFAULT_LARGE_PERSON_DETECTOR},{DEFAULT_EMBEDDER},{DEFAULT_CONFIDENCE}"


def measure(name: str, server: ServerProcess | None, url: str, pairs, args) -> dict:
    closed_loop(url, pair_requests(pairs), 1, args.warmup, args.seconds)
    watch = MemoryWatch(server.processes()) if server else None
    runs = [measure_load(url, pairs, c, args.requests, args.seconds) for c in args.clients]
    peak = watch.stop() if watch else {}
    return {
        "system": name,
        "startup_s": server.startup_seconds if server else None,
        "peak_rss_mb": {k: round(v / 2**20) for k, v in peak.items()},
        "runs": runs,
    }


def start_plain(models: Path, detector: str, embedder: str, confidence: str) -> ServerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "reid_devtools.plain_pipeline:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    detector, _, large = detector.partition("+")
    env = {
        "PLAIN_DETECTOR": str(models / detector),
        **(
            {"PLAIN_LARGE_DETECTOR": str(models / large), "PLAIN_LARGE_HEIGHT": str(LARGE_PERSON_HEIGHT)}
            if large
            else {}
        ),
        "PLAIN_EMBEDDER": str(models / embedder),
        "PLAIN_CONFIDENCE": confidence,
        "YOLO_OFFLINE": "1",
        "YOLO_VERBOSE": "False",
    }
    return ServerProcess(command, port, env=env)


def ratios(ours: dict, plain: dict) -> dict:
    """Our requests/s and median over the plain pipeline's, per client count."""
    result = {}
    for mine, theirs in zip(ours["runs"], plain["runs"]):
        c = mine["clients"]
        result[f"rps_x_{c}_clients"] = mine["rps"] / theirs["rps"] if theirs["rps"] else None
        if mine["p50_ms"] and theirs["p50_ms"]:
            result[f"p50_x_{c}_clients"] = mine["p50_ms"] / theirs["p50_ms"]
    return result


def ratio_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown(systems: list[dict], baselines: dict[str, dict]) -> str:
    """The load table (each service over its plain pipeline) and the start-up and memory table."""
    lines = [
        "| system | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms | req/s ratio | p50 ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        baseline = baselines.get(system["system"])
        over = ratios(system, baseline) if baseline else {}
        for run in system["runs"]:
            c = run["clients"]
            errors = ", ".join(f"{k}: {v}" for k, v in run["errors"].items()) or "0"
            lines.append(
                f"| {system['system']} | {c} | {run['requests']} | {errors} | {run['rps']:.2f} | "
                f"{run['p50_ms'] or 0:.0f} | {run['p95_ms'] or 0:.0f} | {run['p99_ms'] or 0:.0f} | "
                f"{ratio_cell(over.get(f'rps_x_{c}_clients'))} | {ratio_cell(over.get(f'p50_x_{c}_clients'))} |"
            )
    lines += ["", "| system | time to /readyz s | peak RSS MB per process |", "|---|---|---|"]
    for system in systems:
        rss = ", ".join(f"{k} {v}" for k, v in system["peak_rss_mb"].items())
        startup = f"{system['startup_s']:.1f}" if system["startup_s"] else ""
        lines.append(f"| {system['system']} | {startup} | {rss} |")
    return "\n".join(lines)


def settings_env(spec: str) -> dict[str, str]:
    """``key=value,...`` as ``REID_KEY`` environment variables."""
    return {f"REID_{k.upper()}": v for k, v in (kv.split("=", 1) for kv in spec.split(",") if kv)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="benchmark this running service instead of starting one")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=60, help="requests per client count")
    parser.add_argument("--seconds", type=float, default=120, help="time bound per client count")
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--pairs", type=Path, help="a folder of images, taken two by two")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models", type=Path, default=Path("../shared/models"), help="for the plain pipeline")
    parser.add_argument(
        "--plain",
        action="append",
        default=[],
        metavar="NAME=DETECTOR,EMBEDDER,CONFIDENCE",
        help=f"the plain pipeline of a variant (for ours: {DEFAULT_PLAIN})",
    )
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    pairs = folder_pairs(args.pairs) if args.pairs else mot17_pairs(args.data)
    plain_models = {"ours": DEFAULT_PLAIN} | dict(item.split("=", 1) for item in args.plain)
    systems, baselines = [], {}
    if args.url:
        systems.append(measure("ours", None, args.url, pairs, args))
    else:
        for name, spec in [("ours", "")] + [v.split(":", 1) for v in args.variant]:
            with serve_bentoml(env=settings_env(spec)) as server:
                systems.append(measure(name, server, server.url, pairs, args))
    if not args.no_plain:
        for system in list(systems):
            name = system["system"]
            if name not in plain_models:
                continue
            detector, embedder, confidence = plain_models[name].split(",")
            with start_plain(args.models.resolve(), detector, embedder, confidence) as plain:
                baselines[name] = measure(f"plain ({name})", plain, plain.url, pairs, args)
            systems.append(baselines[name])
    print(markdown(systems, baselines))
    if args.json:
        report = {
            "systems": systems,
            "plain_models": {name: plain_models[name] for name in baselines},
            "ratios": {
                name: ratios(next(s for s in systems if s["system"] == name), b) for name, b in baselines.items()
            },
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
