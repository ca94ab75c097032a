"""Fixtures: the shared models and data, a private model store, a live server; the test tiers.

Tiers, by folder (markers, ``pytest -m``): ``unit`` (``tests/unit``) needs none of the fixtures
below: no ``../shared``, no server, under 30 s (``make test-fast``). ``e2e`` (``tests/e2e``,
``tests/container``) runs the real models and ``bentoml serve``; it needs ``../shared`` (override
with ``REID_SHARED_DIR``): under ``CI=true`` its absence fails the run, elsewhere those tests skip
with the reason. ``slow`` marks the longest of them (``-m "not slow"`` leaves them out).

The models are imported once and kept between runs (``reid_devtools/model_cache.py``, under
``~/.cache/reid-tests``); each run gets a copy in a store of its own. A run that needs them and
finds none starts the import at once, in the controller, and runs the unit tier meanwhile.

Every process the tests start carries ``REID_TEST_RUN=<this session's token>`` in its
environment; one still alive at the end of the session (a server's worker orphaned by a kill,
a throwaway PostgreSQL) fails the run, named, and is killed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from reid_devtools.shared import MODELS, SHARED

IN_CI = os.environ.get("CI", "").lower() == "true"
TESTS = Path(__file__).resolve().parent
# The tier of each folder of tests.
TIERS = {"unit": "unit", "e2e": "e2e", "container": "e2e"}
# Slow tests of files whose owners have not marked them yet (elsewhere: @pytest.mark.slow).
SLOW = {
    "unit/test_readme.py": {"test_every_script_the_pages_run_exists_and_takes_its_options"},  # a process per script
    "unit/test_evaluation.py": {"test_retrieval_metrics_agree_with_torchreids_evaluate_rank"},  # imports torch
    "unit/test_private.py": {"test_torchreid_lists_its_architectures"},  # imports torch
}
# The longest modules (seconds of wall time on 2 cores, three workers, the model cache filled), run
# first after the unit tier: xdist hands whole modules to its workers in this order, and the short
# ones left at the end even them out.
LONGEST_FIRST = [
    "e2e/test_gallery.py",  # 340: seven server starts
    "e2e/test_faults.py",  # 270
    "e2e/test_harness.py",  # 220: the whole evaluation
    "e2e/test_hostile.py",  # 135
    "e2e/test_front_door.py",  # 105
    "e2e/test_benchmark.py",  # 70
    "e2e/test_ui.py",  # 70
    "e2e/test_deploy.py",  # 60
]
# End-to-end modules that need no imported models (they read ../shared's files, or none).
NEED_NO_MODELS = ["e2e/test_gallery_store.py", "e2e/test_export.py"]

# Before bentoml or ultralytics are imported anywhere: no telemetry, no network, and a
# model store of the test run's own.
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="reid-test-bentoml-"))
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="reid-test-yolo-"))
# Under pytest-xdist (make test: -n 3) each worker inherits the above from the controller and
# takes a folder of its own below them: stores written at once would mix.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    for variable in ("BENTOML_HOME", "YOLO_CONFIG_DIR"):
        os.environ[variable] = str(Path(os.environ[variable]) / XDIST_WORKER)
        Path(os.environ[variable]).mkdir(parents=True, exist_ok=True)
# Inherited by every process the tests start, scripts' servers and their workers included, and
# by xdist's workers: the controller checks for leftovers once every worker is gone.
TEST_RUN_MARK = ("REID_TEST_RUN", (XDIST_WORKER and os.environ.get("REID_TEST_RUN")) or uuid.uuid4().hex)
os.environ[TEST_RUN_MARK[0]] = TEST_RUN_MARK[1]


EARLY_IMPORT = pytest.StashKey[threading.Thread]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, ``../shared`` must be there. A run that may reach the end-to-end tier starts the
    models' import (:func:`model_store`) at once, in the controller: the unit tier, which runs
    first, needs no models, and the import's cores are not all busy."""
    if IN_CI and not MODELS.is_dir():
        raise pytest.UsageError(f"CI=true but the shared models are missing at {MODELS}")
    if XDIST_WORKER or not MODELS.is_dir() or not reaches_end_to_end(session.config):
        return
    from reid_devtools.model_cache import cached_entry, shared_import

    early = threading.Thread(target=cached_entry, args=shared_import(), name="early model import", daemon=True)
    early.start()
    session.config.stash[EARLY_IMPORT] = early


def reaches_end_to_end(config: pytest.Config) -> bool:
    """Whether the run's arguments leave room for end-to-end tests (``make test-fast``'s do not)."""
    if config.option.markexpr.startswith("unit"):
        return False
    here = config.invocation_params.dir
    paths = [(here / str(arg).split("::")[0]).resolve() for arg in config.args] or [TESTS]
    return any(not path.is_relative_to(TESTS / "unit") for path in paths)


def test_file(item: pytest.Item) -> str | None:
    """The item's file relative to ``tests/`` (``e2e/test_ui.py``); None outside it."""
    with contextlib.suppress(ValueError):
        return item.path.resolve().relative_to(TESTS).as_posix()
    return None


def run_rank(file: str | None) -> int:
    """Where a module's tests run: the unit tier's and :data:`NEED_NO_MODELS` first (while the
    models are imported), then those of :data:`LONGEST_FIRST` in its order, then the other
    end-to-end ones."""
    if (file or "").startswith("unit/") or file in NEED_NO_MODELS:
        return 0
    if file in LONGEST_FIRST:
        return 1 + LONGEST_FIRST.index(file)
    return 1 + len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test marked with its folder's tier, and the tests named in :data:`SLOW` as slow; the
    tests in :func:`run_rank`'s order (a stable sort)."""
    items.sort(key=lambda item: run_rank(test_file(item)))
    for item in items:
        file = test_file(item)
        if file is None:
            continue
        if (tier := file.split("/")[0]) in TIERS:
            item.add_marker(TIERS[tier])
        slow = SLOW.get(file, set())
        if gone := [name for name in slow if not hasattr(getattr(item, "module", None), name)]:
            raise pytest.UsageError(f"tests/conftest.py marks as slow tests {file} no longer has: {gone}")
        if getattr(item, "originalname", item.name) in slow:
            item.add_marker("slow")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture's teardown: no process a test started may still be running. Under
    xdist the controller checks, after its workers are gone (a worker's verdict would be lost)."""
    from reid_devtools.processes import kill_all, leftover_processes, name_of

    if XDIST_WORKER:
        return
    if (early := session.config.stash.get(EARLY_IMPORT, None)) is not None:
        early.join()  # its import is one of the test run's processes
    left = leftover_processes(mark=TEST_RUN_MARK)
    if not left:
        return
    names = [name_of(proc) for proc in left]
    survivors = kill_all(left)
    lines = [f"still running at the end, started by the tests (killed now): {len(left)}", *names]
    lines += [f"and still alive after SIGKILL: {name_of(proc)}" for proc in survivors]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "processes left running", red=True, bold=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines), file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared``, or a skip saying where it was looked for."""
    if not MODELS.is_dir():
        pytest.skip(f"shared models not found at {MODELS} (set REID_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def model_store(shared) -> Path:
    """The test run's BentoML store, holding the shared detector and embedder as ``reid models
    import`` stores them: a copy of the cached import (imported now when the cache has none)."""
    from reid_devtools.model_cache import import_cached, shared_import

    home = Path(os.environ["BENTOML_HOME"])
    arguments, reads = shared_import()
    print("models:", import_cached(arguments, reads, home))
    return home


@pytest.fixture(scope="session")
def settings():
    from reid.config import Settings

    return Settings()


@pytest.fixture(scope="session")
def local_reid(model_store, settings):
    from reid.assembly import LocalReID

    return LocalReID(settings)


@pytest.fixture(scope="session")
def server(model_store):
    """A live service with the shared models, shared by the end-to-end tests."""
    from reid_devtools.processes import serve_bentoml

    with serve_bentoml() as running:
        yield running


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server with pgvector; under CI=true its absence fails the run
    (``.ci/run`` installs it: ``scripts/pgvector.sh``), elsewhere those tests skip."""
    from reid_devtools.postgres import has_pgvector, postgres_server

    if not has_pgvector() and not IN_CI:
        pytest.skip("PostgreSQL with pgvector is not installed: run scripts/pgvector.sh (as root)")
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop uvicorn serves the service on (trio is installed, by
    selenium, but nothing of ours runs on it)."""
    return "asyncio"
