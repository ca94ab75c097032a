"""The test runs' BentoML model store, imported once and kept between runs.

``reid models import`` quantises the embedder with NNCF, the longest step of a test run's set-up,
and what it stores depends only on what it reads: the model files, the labelled crops it
calibrates on, its arguments, and the code and packages that run it. So an import is kept in a
cache folder (``$REID_TEST_CACHE``, else ``$XDG_CACHE_HOME/reid-tests``, else
``~/.cache/reid-tests``) named by the sha256 of its arguments and of every file of the folders it
reads, with a record of the code it ran: the sha256 of each of the project's modules it loaded
(and of the data files beside them, such as the calibrated thresholds), the version of each
package. An entry whose code changed since is imported again: an edit to any of those modules
costs one import.

Nothing a test run does reaches the cache: each run copies the models into a store of its own
(where tests import other models, build bentos, alter files on purpose). An entry is built in a
folder beside its place and renamed into it once complete, so an interrupted build leaves no
entry; its files are read-only and checked against their recorded sha256 before each copy, and
one that differs is built again. Two runs that build at once take turns (a file lock): the
second finds the first's entry. Each build removes the entries no run used for 30 days.

    python -m reid_devtools.model_cache STAGING ARGS...   # what a build runs: the import, then its record
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reid"
LAYOUT = 2  # of an entry: bump when what is kept, or how, changes
MANIFEST = "manifest.json"
RAN = "ran.json"
UNUSED_DAYS = 30  # an entry not used for this long is removed at the next build


def cache_root() -> Path:
    """Where the entries are kept."""
    if folder := os.environ.get("REID_TEST_CACHE"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reid-tests"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``folder``."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }


def entry_key(arguments: list[str], reads: list[Path]) -> str:
    """The sha256 of the import's arguments and of every file of the folders it reads."""
    inputs = {"layout": LAYOUT, "arguments": arguments, "reads": {str(f): sha256_tree(f) for f in reads}}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def shared_import() -> tuple[list[str], list[Path]]:
    """The test runs' import: its arguments, and the folders it reads (the shared models, the crops
    it quantises on)."""
    from reid_devtools.shared import CALIBRATION_CROPS, MODELS

    return ["--from", str(MODELS), "--calibration-crops", str(CALIBRATION_CROPS)], [MODELS, CALIBRATION_CROPS]


def import_cached(arguments: list[str], reads: list[Path], home: Path) -> str:
    """Put into the BentoML store at ``home`` what ``reid models import ARGUMENTS`` puts there,
    from the cache (:func:`cached_entry`). ``reads``: the folders the import reads (the models,
    the calibration crops). Says where it came from."""
    entry, how = cached_entry(arguments, reads)
    # Plain copies: writable, and no link back into the cache.
    shutil.copytree(entry / "home" / "models", home / "models", dirs_exist_ok=True, copy_function=shutil.copyfile)
    os.utime(entry)  # last used now (see prune)
    return how


def cached_entry(arguments: list[str], reads: list[Path]) -> tuple[Path, str]:
    """The cache's current entry for the import, imported now when it holds none (or waited for
    while another process imports it); and how it came."""
    entry = cache_root() / entry_key(arguments, reads)
    how = f"from the cache, {entry}"
    if not current(entry):
        with build_lock(entry):
            if not current(entry):  # another run may have built it meanwhile
                build(entry, arguments)
                how = f"imported now, kept in {entry}"
        prune(entry.parent)
    return entry, how


def prune(root: Path, unused_days: float = UNUSED_DAYS) -> None:
    """Remove the entries (of other models, arguments or code) not used for ``unused_days``."""
    for entry in root.iterdir():
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another run
            unused = time.time() - entry.stat().st_mtime > unused_days * 86400
            if entry.is_dir() and not entry.name.startswith(".") and unused:
                with build_lock(entry):
                    remove(entry)


def current(entry: Path) -> bool:
    """Whether ``entry`` is complete, ran the code installed now, and holds the files it was built with."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("ran") == code_now(manifest.get("ran", {})) and manifest.get("files") == sha256_tree(
        entry / "home" / "models"
    )


def code_now(ran: dict) -> dict:
    """What ``ran`` (a record of :func:`code_record`) would be with the code installed now."""
    code = {name: sha256_file(ROOT / name) if (ROOT / name).is_file() else None for name in ran.get("code", {})}
    packages = {}
    for name in ran.get("packages", {}):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "code": code, "packages": packages}


def code_record() -> dict:
    """The code this process has loaded: the sha256 of each of the project's modules and of the
    data files beside them (``reid/models/calibration.json``), the version of each installed
    package any loaded module belongs to."""
    files = set()
    for module in list(sys.modules.values()):
        path = Path(getattr(module, "__file__", None) or "/").resolve()
        if path.is_relative_to(PACKAGE) and path.is_file():
            files |= {path, *(data for data in path.parent.glob("*.json") if data.is_file())}
    code = {path.relative_to(ROOT).as_posix(): sha256_file(path) for path in files}
    owners = importlib.metadata.packages_distributions()
    loaded = {name.partition(".")[0] for name in list(sys.modules)}
    installed = {Path(folder).resolve() for folder in site.getsitepackages()}
    packages = {}
    for name in {dist for module in loaded for dist in owners.get(module, [])}:
        dist = importlib.metadata.distribution(name)
        # Not the packages others vendor (setuptools' own, on sys.path only while it loads).
        if Path(str(dist.locate_file(""))).resolve() in installed:
            packages[name] = dist.version
    return {
        "python": platform.python_version(),
        "code": dict(sorted(code.items())),
        "packages": dict(sorted(packages.items())),
    }


@contextlib.contextmanager
def build_lock(entry: Path) -> Iterator[None]:
    """One build of ``entry`` at a time, across processes; released when its holder dies."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with (entry.parent / f".{entry.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(entry: Path, arguments: list[str]) -> None:
    """Import into a folder beside ``entry``, record what it holds and ran, make it read-only, and
    rename it into place (replacing a stale ``entry``). Called under :func:`build_lock`."""
    for left in entry.parent.glob(f".{entry.name}-*"):
        if left.is_dir():  # of a build that was killed: under the lock, no other build of it runs
            shutil.rmtree(left, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-building-", dir=entry.parent))
    try:
        env = {**os.environ, "BENTOML_HOME": str(staging / "home")}
        command = [sys.executable, "-m", "reid_devtools.model_cache", str(staging), *arguments]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        print(done.stdout, done.stderr, sep="\n")  # the import's report, in the test run's captured set-up
        if done.returncode != 0:
            raise RuntimeError(f"reid models import {' '.join(arguments)} exited with {done.returncode}")
        ran = json.loads((staging / RAN).read_text())
        manifest = {"arguments": arguments, "ran": ran, "files": sha256_tree(staging / "home" / "models")}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        read_only(staging)
        replace(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed


def read_only(folder: Path) -> None:
    """Every file below ``folder`` read-only (folders stay writable, so an entry can be removed)."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def replace(staging: Path, entry: Path) -> None:
    """Rename ``staging`` to ``entry``, a stale ``entry`` removed first."""
    remove(entry)
    staging.rename(entry)


def remove(entry: Path) -> None:
    """Rename ``entry`` away (at once: no reader finds half of it), then remove it."""
    stale = entry.with_name(f".{entry.name}-stale-{uuid.uuid4().hex}")
    with contextlib.suppress(FileNotFoundError):
        entry.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)


def main(argv: list[str]) -> int:
    """In a build's process (``BENTOML_HOME`` set to the staging store): the import, then the
    record of the code it ran, written into the staging folder."""
    from reid.models.importer import main as import_models

    staging, arguments = Path(argv[0]), argv[1:]
    status = import_models(arguments)
    (staging / RAN).write_text(json.dumps(code_record()))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
