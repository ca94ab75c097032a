"""The detector and embedder in the BentoML model store: import with metadata, verify, load.

Each stored model is a folder holding the weights and a metadata record with the source, the
sha256 of every file, and a spec that says how to run it (``DetectorSpec``/``EmbedderSpec``).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from reid.models.specs import DetectorSpec, EmbedderSpec

SpecT = TypeVar("SpecT", bound=BaseModel)

DETECTOR_NAME = "person-detector"
EMBEDDER_NAME = "person-embedder"


class ModelIntegrityError(RuntimeError):
    """A stored model's files are missing or differ from the sha256 recorded at import."""


class ModelNotImported(LookupError):
    """No model of that tag is in the BentoML model store."""


def sha256_files(folder: Path) -> dict[str, str]:
    """``{relative path: sha256 hex}`` of every file below ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def verify_files(folder: Path, expected: dict[str, str], tag: str) -> None:
    """Raise :class:`ModelIntegrityError` naming the first file that is missing or altered."""
    for name, digest in expected.items():
        path = (folder / name).resolve()
        if not path.is_file():
            raise ModelIntegrityError(f"model {tag}: file {path} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ModelIntegrityError(f"model {tag}: file {path} does not match its recorded sha256")


def identical_model(name: str, spec: BaseModel, digests: dict[str, str]):
    """A stored version of ``name`` with the same files and spec, if there is one."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        versions = bentoml.models.list(name)
    except NotFound:
        return None
    wanted = spec.model_dump(mode="json", exclude_none=True)
    return next(
        (m for m in versions if m.info.metadata.get("sha256") == digests and m.info.metadata.get("spec") == wanted),
        None,
    )


def payload_digests(payload: list[Path]) -> dict[str, str]:
    """The sha256 record that copying ``payload`` into a model folder will give."""
    digests: dict[str, str] = {}
    for item in payload:
        if item.is_dir():
            digests.update({f"{item.name}/{k}": v for k, v in sha256_files(item).items()})
        else:
            digests[item.name] = hashlib.sha256(item.read_bytes()).hexdigest()
    return dict(sorted(digests.items()))


def save_model(name: str, payload: list[Path], spec: BaseModel, source: str, labels: dict[str, str]):
    """Copy files or folders into a new version of ``name`` in the model store.

    Importing the same files with the same spec again returns the version already stored.
    """
    import bentoml

    existing = identical_model(name, spec, payload_digests(payload))
    if existing is not None:
        return existing
    with bentoml.models.create(name, labels=labels, metadata={}) as model:
        folder = Path(model.path)
        for item in payload:
            if item.is_dir():
                shutil.copytree(item, folder / item.name)
            else:
                shutil.copy2(item, folder / item.name)
        metadata: dict[str, Any] = {
            "source": source,
            "spec": spec.model_dump(mode="json", exclude_none=True),
            "sha256": sha256_files(folder),
        }
        model.info.metadata.update(metadata)
    return model


def model_files(weights: Path) -> list[Path]:
    """The files a weights path stands for: an OpenVINO IR ``.xml`` comes with its ``.bin``."""
    return [weights] + ([weights.with_suffix(".bin")] if weights.suffix == ".xml" else [])


def import_detector(weights: list[Path], spec: DetectorSpec, *, source: str, name: str = DETECTOR_NAME):
    """Store a person detector: its weights (files, IRs or export folders: one per network of the
    spec, each under its own name) and the spec that runs them."""
    files = [path for network in weights for path in model_files(network)]
    return save_model(name, files, spec, source, {"role": "detector", "backend": spec.backend})


def import_embedder(weights: Path, spec: EmbedderSpec, *, source: str, name: str = EMBEDDER_NAME):
    """Store an embedder: its weights file(s) and the spec that runs them."""
    return save_model(name, model_files(weights), spec, source, {"role": "embedder", "backend": spec.backend})


def stored_model(tag: str):
    """The stored model for ``tag``, with a clear error when it was never imported."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except NotFound as error:
        raise ModelNotImported(f"model {tag} is not in the BentoML model store; run reid models import") from error


def open_stored(model, spec_type: type[SpecT], *, verify: bool = True) -> tuple[Path, SpecT]:
    """A stored model's ``(folder, spec)``, its files first checked against their sha256."""
    folder = Path(model.path)
    recorded = model.info.metadata.get("sha256")
    if not recorded:
        raise ModelIntegrityError(f"model {model.tag} has no recorded sha256; import it with reid models import")
    if verify:
        verify_files(folder, recorded, str(model.tag))
    return folder, spec_type.model_validate(model.info.metadata["spec"])
