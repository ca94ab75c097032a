"""A smoke run of scripts/benchmark.py: a handful of requests, a table, no errors. Never a time."""

import json

import pytest

from reid_devtools.processes import run_script
from reid_devtools.shared import DATA, MODELS

pytestmark = pytest.mark.slow  # the script starts the plain pipeline's server too


def test_benchmark_smoke(server, tmp_path):
    out = tmp_path / "bench.json"
    args = [
        "--url",
        server.url,
        "--clients",
        "1",
        "2",
        "--requests",
        "4",
        "--warmup",
        "1",
        "--data",
        str(DATA),
        "--models",
        str(MODELS),
        "--json",
        str(out),
    ]
    table = run_script("benchmark", args).stdout
    assert "| ours | 1 |" in table and "| plain (ours) | 2 |" in table
    report = json.loads(out.read_text())
    for system in report["systems"]:
        for run in system["runs"]:
            assert run["errors"] == {} and run["ok"] == run["requests"] == 4
    assert set(report["ratios"]["ours"]) >= {"rps_x_1_clients", "rps_x_2_clients", "p50_x_1_clients"}
    assert report["systems"][-1]["peak_rss_mb"]["main"] > 0
