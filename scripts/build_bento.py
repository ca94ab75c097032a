"""Build the Bento from bentofile.yaml with the lock its stored models need; print its tag.

The Bento's version is the project's (pyproject.toml), so its image is ``localhost/reid:<version>``
as the deployment files name it; a rebuild replaces the Bento of that version.

The runtime lock serves OpenVINO models (the defaults). When a stored model runs on a backend of
the torch extra (ultralytics, torchreid, ONNX), the Bento installs requirements/torch.lock
instead. ``--base-image`` builds FROM a local image (scripts/container.sh's Debian 12 base),
where no registry is reachable; without it the Bento keeps bentofile.yaml's portable
``docker`` section (python:3.11-slim and the system packages it names).

    python scripts/build_bento.py [--base-image localhost/reid-base:bookworm]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml

from reid_devtools.containers import project_version

ROOT = Path(__file__).resolve().parents[1]
# Relative to the build context: bentoml refuses absolute paths.
RUNTIME_LOCK = "requirements/runtime.lock"
TORCH_LOCK = "requirements/torch.lock"


def bento_lock() -> str:
    """The lock the stored models of the settings need."""
    from reid.config import get_settings
    from reid.models.loading import StoredModels

    models = StoredModels.open(get_settings(), detector=False, embedder=False)
    return TORCH_LOCK if models.needs_torch_extra else RUNTIME_LOCK


def build(base_image: str | None) -> str:
    """Build the Bento, replacing one of the same version; its tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    config["python"]["requirements_txt"] = bento_lock()
    if base_image:
        config["docker"] = {"base_image": base_image}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=ROOT, prefix=".bentofile-") as bentofile:
        yaml.safe_dump(config, bentofile)
        bentofile.flush()
        tag = f"{config['name']}:{project_version()}"
        try:
            bentoml.bentos.delete(tag)
        except NotFound:
            pass
        return str(bentoml.bentos.build_bentofile(bentofile.name, version=project_version(), build_ctx=str(ROOT)).tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-image", help="a local image with Python 3.11 to build FROM")
    args = parser.parse_args()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    print(build(args.base_image))


if __name__ == "__main__":
    main()
