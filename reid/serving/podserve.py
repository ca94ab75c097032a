"""Serve one of the three services alone on a TCP port: one pod per service (Kubernetes).

    python -m reid.serving.podserve PersonDetector --port 3000
    python -m reid.serving.podserve PersonEmbedder --port 3000
    python -m reid.serving.podserve ReID --port 3000 \\
        --dependency PersonDetector=http://reid-detector:3000 --dependency PersonEmbedder=http://reid-embedder:3000

`bentoml serve` starts all three services of the Bento in one place. Split across pods, each
runs BentoML's own worker for its service on a socket bound here; the entry is told where its
dependencies are and talks to them with BentoML's internal (pickle) transport, which the model
services accept because they are not the entry. Their ports must therefore only ever be reachable
from the entry (a ClusterIP Service and a NetworkPolicy), never exposed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from reid.private import BENTOML_WORKER_MODULE

SERVICES = ("ReID", "PersonDetector", "PersonEmbedder")


def main(argv: list[str] | None = None) -> int:
    """Bind the port and become BentoML's worker for the one service named."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--bento", default=".", help="the Bento or project folder (default: the current one)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--dependency", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args(argv)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(args.backlog)
    listener.set_inheritable(True)
    dependencies = dict(item.split("=", 1) for item in args.dependency)
    environment = {**os.environ, "BENTOML_RUNNER_MAP": json.dumps(dependencies)}
    command = [sys.executable, "-m", BENTOML_WORKER_MODULE, args.bento, "--fd", str(listener.fileno())]
    command += ["--worker-id", "1", "--backlog", str(args.backlog)]
    if args.service != "ReID":
        command += ["--service-name", args.service]
    os.execve(sys.executable, command, environment)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
