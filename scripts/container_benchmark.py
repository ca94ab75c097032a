"""The image in numbers: its size, its start-up to /readyz, and a light compare's latency inside
it (the two-camera hall's first and last frames, one request at a time) beside the same models
served by ``bentoml serve .`` on this machine, outside any container.

    make container && python scripts/container_benchmark.py --json docs/container.json

Both serve the models of the BentoML store the image was built from ($BENTOML_HOME, else
~/bentoml): the same networks, so the ratio is the container's cost alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from pathlib import Path

from reid_devtools.containers import image_name, image_size_mb, run_image
from reid_devtools.load import light_compare_ms
from reid_devtools.processes import serve_bentoml
from reid_devtools.reports import publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=image_name())
    parser.add_argument("--starts", type=int, default=3, help="container start-ups timed")
    parser.add_argument("--compares", type=int, default=20, help="compares timed per server, after 3 to warm up")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    startups, container_ms = [], []
    for _ in range(args.starts):
        with run_image(args.image) as server:
            startups.append(server.startup_seconds)
            light_compare_ms(server.url, 3)
            container_ms.append(light_compare_ms(server.url, args.compares))
    with serve_bentoml() as server:
        light_compare_ms(server.url, 3)
        native_ms = light_compare_ms(server.url, args.compares)
    report = {
        "image": args.image,
        "image_size_mb": round(image_size_mb(args.image)),
        "startup_to_readyz_s": {
            "median": round(statistics.median(startups), 1),
            "all": [round(s, 1) for s in startups],
        },
        "compare_ms": {
            "container_median": round(statistics.median(container_ms)),
            "native_median": round(native_ms),
            "ratio": round(statistics.median(container_ms) / native_ms, 2),
        },
        "compares": args.compares,
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
    }
    publish(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
