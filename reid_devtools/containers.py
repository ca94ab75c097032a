"""The service's OCI image (scripts/container.sh) run with podman, for its tests and benchmark.

A container runs in the foreground of a :class:`~reid_devtools.processes.ServerProcess` (``podman run``
on the host's network, the recipe of ../shared/CONTAINERS.md), so it is waited on, logged and
stopped like any other server; the container itself is removed by name afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

from reid_devtools.processes import ROOT, ServerProcess, free_port

CONTAINERS_CONF = ROOT / "deploy" / "container" / "containers.conf"


def project_version() -> str:
    """The version in pyproject.toml: the Bento's, and its image's tag."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def image_name() -> str:
    """The image scripts/container.sh builds and the deployment files name."""
    return f"localhost/reid:{project_version()}"


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """``podman args``, its output as text."""
    return subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, check=check, timeout=timeout
    )


def image_size_mb(image: str) -> float:
    """The image's size as podman counts it (all layers, uncompressed), in MB."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) / 1e6


@contextlib.contextmanager
def run_image(
    image: str,
    *,
    env: dict[str, str] | None = None,
    volumes: dict[Path, str] | None = None,
    port: int | None = None,
    command: list[str] | None = None,
    workdir: str | None = None,
    ready_path: str = "/readyz",
) -> Iterator[ServerProcess]:
    """The image's service on a loopback port, ready (``ready_path``); ``volumes`` maps host
    folders to container paths, handed to the image's user (podman's ``:U``). ``command``
    replaces the image's entrypoint and arguments, as a Kubernetes container's ``command`` does;
    by default the image serves the whole Bento on ``port``."""
    port = port or free_port()
    name = f"reid-{uuid.uuid4().hex[:12]}"
    run = ["podman", "run", "--rm", "--name", name, "--network", "host"]
    for host, inside in (volumes or {}).items():
        run += ["--volume", f"{host}:{inside}:U"]
    for key, value in (env or {}).items():
        run += ["--env", f"{key}={value}"]
    if workdir:
        run += ["--workdir", workdir]
    if command:
        run += ["--entrypoint", command[0], image, *command[1:]]
    else:
        run += [image, "serve", "--port", str(port)]
    try:
        conf = {"CONTAINERS_CONF": podman_env()["CONTAINERS_CONF"]}
        with ServerProcess(run, port, env=conf, ready_path=ready_path) as server:
            yield server
    finally:
        podman("rm", "--force", "--time", "10", name, check=False)
