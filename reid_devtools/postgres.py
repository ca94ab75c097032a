"""A throwaway PostgreSQL server on a loopback port, for the gallery's server-engine tests and
benchmarks: ``initdb`` into a temporary folder, ``pg_ctl start``, and gone afterwards: stopped by
``pg_ctl stop``, and its postmaster with every backend killed should any outlive that."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reid_devtools.processes import LeftoverProcessError, free_port, kill_all, name_of, remember, wait_gone


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def has_pgvector() -> bool:
    """Whether the installed PostgreSQL has the pgvector extension (``scripts/pgvector.sh``)."""
    binaries = postgres_binaries()
    return (
        binaries is not None
        and Path(f"/usr/share/postgresql/{binaries.parent.name}/extension/vector.control").is_file()
    )


@contextlib.contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh server, with ``settings`` (``postgresql.conf`` names) beside the defaults; yields
    its SQLAlchemy URL (user ``postgres``, trust authentication on loopback only). PostgreSQL
    refuses to run as root: as root it runs as the ``postgres`` user."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found)")
    folder = Path(tempfile.mkdtemp(prefix="reid-postgres-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=on"
    options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    postmaster = None
    try:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        postmaster = postmaster_process(data)
        process_tree(postmaster)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        postmaster = postmaster or postmaster_process(data)
        tree = process_tree(postmaster)
        with contextlib.suppress(subprocess.SubprocessError):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        left = kill_all(wait_gone(tree, timeout=10))
        shutil.rmtree(folder, ignore_errors=True)
        if left:
            raise LeftoverProcessError(f"PostgreSQL still running: {'; '.join(name_of(p) for p in left)}")


def postmaster_process(data: Path):
    """The running postmaster of a data folder (its pid is the first line of postmaster.pid), or None."""
    import psutil

    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)
    except (OSError, IndexError, ValueError, psutil.Error):
        return None


def process_tree(proc) -> list:
    """A process and its descendants, remembered for the test session's leftover check."""
    import psutil

    if proc is None:
        return []
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []
    remember(tree)
    return tree
