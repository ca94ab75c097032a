"""Where model weights come from: a local folder (offline) or the official downloads (online).

Both give the same thing, a folder holding the files under their official names, so the
import that follows is one code path.
"""

from __future__ import annotations

import json
from pathlib import Path

from reid.models.specs import DetectorSpec, EmbedderSpec, Preprocess, require_backend

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")

# torchreid model zoo, same-domain MSMT17 weights (Google Drive file ids from torchreid's MODEL_ZOO).
TORCHREID_ZOO = {
    "osnet_x0_25_msmt17.pth": "1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF",
    "osnet_x0_5_msmt17.pth": "1UT3AxIaDvS2PdxzZmbkLmjtiqq7AIKCv",
    "osnet_x0_75_msmt17.pth": "1QEGO6WnJ-BmUzVPd3q9NoaO_GsPNlmWc",
    "osnet_x1_0_msmt17.pth": "112EMUfBPYeYg70w-syK6V6Mx8-Qb9Q1M",
}
OMZ_BASE = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1/"


def _omz(model: str, precision: str, xml: str, bin_: str) -> tuple[str, tuple[str, dict[str, str]]]:
    return f"{model}/{model}.xml", (f"{OMZ_BASE}{model}/{precision}/", {".xml": xml, ".bin": bin_})


# Intel Open Model Zoo IRs (Apache-2.0): download folder and the sha256 each file (by suffix) must have.
OPEN_MODEL_ZOO = dict(
    [
        _omz(
            "person-reidentification-retail-0287",
            "FP16",
            "95125bc630208d9a27370b11bd04d220f93f64b60fe4be5bc576e9aebb69603d",
            "8811b3db2f6ebacbf2c05510593783316026ff779d9b048b6ca2581f17baf86c",
        ),
        _omz(
            "person-reidentification-retail-0286",
            "FP16",
            "cc547e622d8aeabf97938213f68171bf59ac7d01c910ceadfea984aa96e5d1b5",
            "d06beb9e2b2661d42b233f64ef623f3518fc46dc11f6b7dd53cda8962d9d1bd9",
        ),
        _omz(
            "person-reidentification-retail-0277",
            "FP16",
            "82039b1bb986231c50345550e59def94e63579998e9cddbd1a312f293eb87729",
            "6bb69e09d07733cc3896b29081d2627f92db7b9aacd50f1a8c3df491cb10f1b7",
        ),
        _omz(
            "person-detection-0203",
            "FP16-INT8",
            "4af55048c5fb7db2fa9ea1cc121bb2fecf6143e31a71c8fc16c71d912e823a86",
            "1b62b89ac589f7957052ef3c7ed0e454a900a5c86a7765c2bee6143a03b003b0",
        ),
        _omz(
            "person-detection-0303",
            "FP16-INT8",
            "3ce6ba10826e657a74a272b0d8e0511534b3d141e5ca50576bc8e759df5253fe",
            "9809e687974e4e16e2b9c514d816e8a0f9d2bc36d694ea8e4917aa25587a600c",
        ),
    ]
)
# The defaults, chosen by end-to-end accuracy first, then made fast (docs/accuracy.md).
DEFAULT_DETECTOR = "person-detection-0303/person-detection-0303.xml"
# Beside it, for persons at least LARGE_PERSON_HEIGHT pixels tall at its 640-pixel input: one box
# per person where people stand side by side (docs/accuracy.md). Online, ultralytics' own file.
DEFAULT_LARGE_PERSON_DETECTOR = "yolov8n_int8_openvino_model"
ONLINE_LARGE_PERSON_DETECTOR = "yolov8n.pt"
LARGE_PERSON_HEIGHT = 80.0
DEFAULT_EMBEDDER = "person-reidentification-retail-0277/person-reidentification-retail-0277.xml"
DEFAULT_QUANTIZATION = "int8"
# ultralytics' own default minimum score, for detectors never calibrated here.
ULTRALYTICS_DEFAULT_CONFIDENCE = 0.25
# Intel Open Model Zoo ReID networks: BGR, 0..255, no normalisation.
INTEL_PREPROCESS = Preprocess(channels="BGR", scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def download(name: str, cache: Path) -> Path:
    """Fetch official weights into ``cache``: ultralytics ``.pt`` files, Open Model Zoo IRs
    (sha256-checked) or torchreid model-zoo weights. Online only; the offline twin is ``--from``."""
    target = cache / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if name in OPEN_MODEL_ZOO:
        import hashlib
        import urllib.request

        base, digests = OPEN_MODEL_ZOO[name]
        for suffix, digest in digests.items():
            path = target.with_suffix(suffix)
            if not path.exists():
                try:
                    urllib.request.urlretrieve(base + path.name, path)
                except OSError as error:  # urllib's URLError among them
                    raise OSError(
                        f"could not download {base + path.name} ({getattr(error, 'reason', error)}); offline,"
                        " import from a folder holding the weights: --from DIR, or REID_MODELS_DIR"
                    ) from error
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                path.unlink()
                raise ValueError(f"{base + path.name} does not have the expected sha256 {digest}")
    elif name in TORCHREID_ZOO:
        require_backend("torchreid", name)
        import gdown

        if not target.exists():
            gdown.download(id=TORCHREID_ZOO[name], output=str(target), quiet=False)
    elif name.endswith(".pt"):
        require_backend("ultralytics", name)
        from reid.models.detection import load_ultralytics

        load_ultralytics()
        from ultralytics.utils.downloads import attempt_download_asset

        return Path(attempt_download_asset(str(target)))
    else:
        known = [*OPEN_MODEL_ZOO, *TORCHREID_ZOO, "yolov8n.pt (any ultralytics .pt)"]
        raise ValueError(f"no download known for {name}; known: {', '.join(known)}")
    return target


def torchreid_architecture(weights: Path) -> str:
    """The torchreid architecture a weights file is named after (``osnet_x0_25_msmt17.pth`` -> ``osnet_x0_25``)."""
    require_backend("torchreid", weights.name)
    from reid.private import torchreid_architectures

    names = sorted((n for n in torchreid_architectures() if weights.stem.startswith(n)), key=len, reverse=True)
    if not names:
        raise ValueError(f"{weights.name}: cannot tell its torchreid architecture; pass --architecture")
    return names[0]


def calibrated(weights_name: str, key: str) -> float | None:
    """A calibrated default (``threshold`` of an embedder, ``confidence`` of a detector) recorded
    for a weights file by scripts/evaluate.py, or None."""
    entry = json.loads(CALIBRATION_FILE.read_text()).get(Path(weights_name).stem, {})
    return float(entry[key]) if key in entry else None


def calibrated_threshold(weights_name: str) -> float:
    """The calibrated default match threshold of an embedder's weights file."""
    threshold = calibrated(weights_name, "threshold")
    if threshold is None:
        raise KeyError(f"no calibrated threshold for {Path(weights_name).stem} in {CALIBRATION_FILE}; pass --threshold")
    return threshold


def detector_spec(weights: Path, *, confidence: float | None = None, runtime: str = "openvino") -> DetectorSpec:
    """The spec of a detector: an ultralytics file or export folder, or an OpenVINO IR ``.xml``
    with a ``boxes`` output of ``(N, 5)`` rows (Intel's Open Model Zoo person detectors), whose
    input size is read off the IR itself. An ultralytics OpenVINO export folder runs on OpenVINO
    itself (``runtime="openvino"``: no PyTorch, less CPU) or through ultralytics."""
    confidence = calibrated(weights.name, "confidence") if confidence is None else confidence
    if weights.suffix == ".xml":
        import openvino

        model = openvino.Core().read_model(str(weights))
        names = {name for output in model.outputs for name in output.get_names()}
        shape = model.inputs[0].get_partial_shape()
        if "boxes" not in names or shape.rank.get_length() != 4 or shape.is_dynamic:
            raise ValueError(f"{weights}: not a person detector IR (a static 1x3xHxW input and a 'boxes' output)")
        return DetectorSpec(
            architecture=weights.stem,
            backend="openvino",
            weights=weights.name,
            input_width=shape[3].get_length(),
            input_height=shape[2].get_length(),
            # Intel's person detectors take frames stretched to their input, 0..255 BGR.
            channels="BGR",
            resize="stretch",
            outputs="boxes_xyxy_score",
            confidence=0.5 if confidence is None else confidence,
        )
    size = 640
    if weights.is_dir() and weights.name.endswith("_openvino_model"):
        import yaml

        metadata_file = weights / "metadata.yaml"
        metadata = yaml.safe_load(metadata_file.read_text()) if metadata_file.is_file() else {}
        size = max(metadata.get("imgsz", [size]))
        if runtime == "openvino":
            (network,) = weights.glob("*.xml")
            return DetectorSpec(
                architecture=weights.name.split("_")[0],
                backend="openvino",
                weights=f"{weights.name}/{network.name}",
                input_width=size,
                input_height=size,
                channels="RGB",
                outputs="yolo_classes",
                pixel_scale=1 / 255,
                confidence=ULTRALYTICS_DEFAULT_CONFIDENCE if confidence is None else confidence,
            )
    elif not (weights.is_file() and weights.suffix in (".pt", ".onnx", ".torchscript")):
        raise ValueError(
            f"{weights}: not a detector (.pt, .onnx, .torchscript, *_openvino_model/, or an OpenVINO IR .xml)"
        )
    return DetectorSpec(
        architecture=weights.name.split("_")[0].removesuffix(weights.suffix),
        backend="ultralytics",
        weights=weights.name,
        input_width=size,
        input_height=size,
        confidence=ULTRALYTICS_DEFAULT_CONFIDENCE if confidence is None else confidence,
    )


def embedder_spec(weights: Path, *, architecture: str | None, threshold: float | None) -> EmbedderSpec:
    """The spec of a torchreid ``.pth`` or Intel OpenVINO IR ``.xml`` embedder.

    The embedding size is read off the network by embedding one blank crop.
    """
    import numpy as np

    from reid.models.embedding import Embedder

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
