"""The folders (and ``reid/assembly.py``) are the architecture's layers: the computing core needs
neither BentoML nor the model runtimes, and no layer reaches up into one above it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from reid_devtools.shared import ROOT

PACKAGE = ROOT / "reid"
# Who may import whom, inside reid: a layer imports itself and the ones listed.
LAYERS = {
    "core": {"core"},
    "gallery": {"core", "gallery"},
    "evaluation": {"core", "evaluation"},
    "models": {"core", "evaluation", "models"},
    "assembly": {"core", "models", "assembly"},
    "serving": {"core", "gallery", "models", "assembly", "serving"},
    "clients": {"core", "gallery", "models", "assembly", "clients", "serving"},
}


def layer_modules(layer: str) -> list[Path]:
    """The modules of a layer: its folder's, or the one module it is."""
    module = PACKAGE / f"{layer}.py"
    return [module] if module.exists() else sorted((PACKAGE / layer).rglob("*.py"))


def reid_imports(path: Path) -> set[str]:
    """The ``reid.<layer>`` packages a module imports (anywhere in it, lazily too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("reid.") and name.count(".") >= 1}
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_imports_only_itself_and_the_layers_below(layer):
    contract = {"config", "errors", "schemas", "private"}
    modules = layer_modules(layer)
    assert modules, f"no modules in reid/{layer}"
    for module in modules:
        reaching = reid_imports(module) - contract - LAYERS[layer]
        assert not reaching, f"{module.relative_to(ROOT)} imports reid.{', reid.'.join(sorted(reaching))}"


def test_the_serving_side_is_in_small_rooms_each_saying_first_what_it_owns():
    for module in layer_modules("serving"):
        text = module.read_text()
        assert len(text.splitlines()) <= 300, f"{module.relative_to(ROOT)}: over 300 lines"
        assert ast.get_docstring(ast.parse(text)), f"{module.relative_to(ROOT)} does not open with what it owns"


def test_the_core_runs_without_bentoml_or_a_model_runtime():
    modules = [f"reid.core.{path.stem}" for path in (PACKAGE / "core").glob("*.py") if path.stem != "__init__"]
    code = (
        f"import sys\nfor name in {modules!r}: __import__(name)\n"
        "print(sorted(m for m in ('bentoml', 'torch', 'openvino', 'ultralytics') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
