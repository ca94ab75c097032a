"""The accuracy evaluation (scripts/evaluate.py on the shared labelled data, about 45 s on 2
cores), run once for the tests that read its ``figures`` (``tests/e2e/test_harness.py``).
``make test`` hands that module out among the first three (``tests/conftest.py``), so one xdist
worker evaluates while the others work through the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid_devtools.processes import Script
from reid_devtools.shared import DATA, SHARED


@pytest.fixture(scope="session")
def evaluation(model_store, tmp_path_factory) -> tuple[Script, Path]:
    """The evaluation's script, started, and where its report will be (its plot beside it, a
    ``.png``)."""
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
