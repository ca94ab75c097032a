"""The three locks and the extras: the runtime serves the defaults, the torch extra adds the
ultralytics, torchreid and ONNX backends, dev adds the tools; each lock pins its environment."""

import re
import tomllib

import pytest

from reid.models import specs
from reid_devtools.shared import ROOT

LOCKS = ROOT / "requirements"
DEV_TOOLS = {
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "ruff",
    "mypy",
    "schemathesis",
    "kubernetes-validate",
    "selenium",
}
TORCH = {"torch", "torchvision", "torchreid", "ultralytics-opencv-headless", "onnxruntime", "onnx"}


def pins(name: str) -> dict[str, str]:
    lines = (LOCKS / name).read_text().splitlines()
    return {n.lower(): v for n, v in (line.split("==") for line in lines if line and not line.startswith("#"))}


def declared(group: str | None) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {re.sub(r"\[.*\]", "", n).lower(): v for n, v in (item.split("==") for item in listed)}


def test_each_lock_holds_the_one_before_it_at_the_same_versions():
    runtime, torch, dev = pins("runtime.lock"), pins("torch.lock"), pins("dev.lock")
    assert runtime.items() <= torch.items() <= dev.items()


def test_the_runtime_holds_no_torch_and_no_tool():
    runtime, torch = pins("runtime.lock"), pins("torch.lock")
    assert not (TORCH | DEV_TOOLS) & set(runtime)
    assert TORCH <= set(torch) and not DEV_TOOLS & set(torch)


@pytest.mark.parametrize(("group", "lock"), [(None, "runtime.lock"), ("torch", "torch.lock"), ("dev", "dev.lock")])
def test_every_direct_dependency_is_pinned_as_its_lock_pins_it(group, lock):
    assert declared(group).items() <= pins(lock).items()


def test_a_backend_without_its_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(specs.EXTRA_MODULES, "onnx", ("reid_no_such_module",))
    with pytest.raises(specs.MissingExtra, match=r"osnet\.onnx .*reid_no_such_module.*torch extra"):
        specs.require_backend("onnx", "osnet.onnx")
    specs.require_backend("openvino", "model.xml")  # the runtime's own: nothing to check
