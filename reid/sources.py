"""Where model weights come from: a local folder (offline) or the official downloads (online).

Both give the same thing, a folder holding the files under their official names, so the
import that follows is one code path.
"""

from __future__ import annotations

import json
from pathlib import Path

from reid.embedding import EmbedderSpec, Preprocess

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")

# torchreid model zoo, same-domain MSMT17 weights (Google Drive file ids from torchreid's MODEL_ZOO).
TORCHREID_ZOO = {
    "osnet_x0_25_msmt17.pth": "1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF",
    "osnet_x0_5_msmt17.pth": "1UT3AxIaDvS2PdxzZmbkLmjtiqq7AIKCv",
    "osnet_x0_75_msmt17.pth": "1QEGO6WnJ-BmUzVPd3q9NoaO_GsPNlmWc",
    "osnet_x1_0_msmt17.pth": "112EMUfBPYeYg70w-syK6V6Mx8-Qb9Q1M",
}
# Intel Open Model Zoo IRs: download folder and the sha256 each file (by suffix) must have.
OPEN_MODEL_ZOO = {
    "person-reidentification-retail-0287/person-reidentification-retail-0287.xml": (
        "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1/"
        "person-reidentification-retail-0287/FP16/",
        {
            ".xml": "95125bc630208d9a27370b11bd04d220f93f64b60fe4be5bc576e9aebb69603d",
            ".bin": "8811b3db2f6ebacbf2c05510593783316026ff779d9b048b6ca2581f17baf86c",
        },
    ),
}
DEFAULT_DETECTORS = ("yolov8n.pt", "yolov8n_int8_openvino_model", "yolov8n_openvino_model")
# The best scene F1 within the latency budget (README, "Accuracy").
DEFAULT_EMBEDDER = "person-reidentification-retail-0287/person-reidentification-retail-0287.xml"
# Intel Open Model Zoo ReID networks: BGR, 0..255, no normalisation.
INTEL_PREPROCESS = Preprocess(channels="BGR", scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def find_detector(folder: Path, name: str | None) -> Path:
    """The detector in ``folder``: ``name``, or the first of the default names present."""
    candidates = [name] if name else list(DEFAULT_DETECTORS)
    for candidate in candidates:
        if (folder / candidate).exists():
            return folder / candidate
    raise FileNotFoundError(f"no detector {' or '.join(candidates)} in {folder}")


def download_detector(name: str, cache: Path) -> Path:
    """Fetch official ultralytics weights (``yolov8n.pt``...) into ``cache``. Online only."""
    from reid.detection import load_ultralytics

    load_ultralytics()
    from ultralytics.utils.downloads import attempt_download_asset

    cache.mkdir(parents=True, exist_ok=True)
    return Path(attempt_download_asset(str(cache / name)))


def download_embedder(name: str, cache: Path) -> Path:
    """Fetch torchreid model-zoo weights or an Open Model Zoo IR into ``cache``. Online only."""
    target = cache / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if name in OPEN_MODEL_ZOO:
        import hashlib
        import urllib.request

        base, digests = OPEN_MODEL_ZOO[name]
        for suffix, digest in digests.items():
            file = target.with_suffix(suffix).name
            path = target.parent / file
            if not path.exists():
                urllib.request.urlretrieve(base + file, path)
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                path.unlink()
                raise ValueError(f"{base + file} does not have the expected sha256 {digest}")
    elif name in TORCHREID_ZOO:
        import gdown

        if not target.exists():
            gdown.download(id=TORCHREID_ZOO[name], output=str(target), quiet=False)
    else:
        raise ValueError(f"no download known for {name}; known: {', '.join([*OPEN_MODEL_ZOO, *TORCHREID_ZOO])}")
    return target


def torchreid_architecture(weights: Path) -> str:
    """The torchreid architecture a weights file is named after (``osnet_x0_25_msmt17.pth`` -> ``osnet_x0_25``)."""
    from torchreid.reid.models import __model_factory

    names = sorted((n for n in __model_factory if weights.stem.startswith(n)), key=len, reverse=True)
    if not names:
        raise ValueError(f"{weights.name}: cannot tell its torchreid architecture; pass --architecture")
    return names[0]


def calibrated_threshold(weights_name: str) -> float:
    """The calibrated default threshold recorded for a weights file (see scripts/evaluate.py)."""
    table = json.loads(CALIBRATION_FILE.read_text())
    stem = Path(weights_name).stem
    if stem not in table:
        raise KeyError(f"no calibrated threshold for {stem} in {CALIBRATION_FILE}; pass --threshold")
    return float(table[stem]["threshold"])


def embedder_spec(weights: Path, *, architecture: str | None, threshold: float | None) -> EmbedderSpec:
    """The spec of a torchreid ``.pth`` or Intel OpenVINO IR ``.xml`` embedder.

    The embedding size is read off the network by embedding one blank crop.
    """
    import numpy as np

    from reid.embedding import Embedder

    threshold = calibrated_threshold(weights.name) if threshold is None else threshold
    if weights.suffix == ".xml":
        spec = EmbedderSpec(
            architecture=weights.stem,
            backend="openvino",
            weights=weights.name,
            embedding_dim=0,
            preprocess=INTEL_PREPROCESS,
            threshold=threshold,
            # Shipped in FP16; bf16 inference changes its embeddings by under 1e-3 (cosine) and
            # halves the time on CPUs with bf16 units.
            precision="bf16",
        )
    else:
        spec = EmbedderSpec(
            architecture=architecture or torchreid_architecture(weights),
            backend="torchreid",
            weights=weights.name,
            embedding_dim=0,
            threshold=threshold,
        )
    blank = np.zeros((spec.preprocess.height, spec.preprocess.width, 3), np.uint8)
    dim = Embedder(weights.parent, spec).embed([blank]).shape[1]
    return spec.model_copy(update={"embedding_dim": dim})
