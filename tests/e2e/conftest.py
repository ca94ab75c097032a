"""The end-to-end tier's one early start: the whole accuracy evaluation (scripts/evaluate.py on
the shared labelled data, about two minutes of one core) runs in the background from the first
end-to-end test on, as soon as the models are in the store, when a selected test reads its
``figures`` (``tests/e2e/test_harness.py``): the tests before those leave a core idle often enough."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid_devtools.processes import Script
from reid_devtools.shared import DATA, SHARED


@pytest.fixture(scope="session", autouse=True)
def evaluation(request, tmp_path_factory) -> tuple[Script, Path] | None:
    """The evaluation's script, started, and where its report will be (its plot beside it, a
    ``.png``); None when no selected test reads the figures."""
    if not any("figures" in item.fixturenames for item in request.session.items):
        yield None
        return
    request.getfixturevalue("model_store")
    report = tmp_path_factory.mktemp("eval") / "eval.json"
    args = ["--json", str(report), "--plot", str(report.with_suffix(".png"))]
    for name in ("pku-reid-val", "duke-crops"):
        args += ["--crops", str(DATA / name)]
    for name in ("mot17", "two-camera-hall"):
        args += ["--scenes", str(DATA / name)]
    args += ["--kinds", str(SHARED)]
    script = Script("evaluate", args)
    yield script, report
    script.stop()  # when the session ends before the script did
