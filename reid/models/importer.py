"""Put the person detector and the ReID embedder into the BentoML model store
(``reid models import``).

Offline (``--from DIR`` or ``REID_MODELS_DIR``): the files are read from DIR, e.g. ``../shared/models``.
Online (neither given): the official weights are downloaded (ultralytics ``yolov8n.pt``, Intel's
Open Model Zoo IRs, or torchreid's OSNet MSMT17 weights) into ``--cache`` first. Nothing
downloads at serve time.

    reid models import --from ../shared/models --calibration-crops ../shared/data/cuhk03-pair1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from reid.config import get_settings
from reid.models import sources, store
from reid.models.export import export_torchreid
from reid.models.specs import describe_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The import command's arguments (``reid models import``)."""
    settings = get_settings()
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=settings.models_dir,
        help="offline: a folder holding the weights (default: $REID_MODELS_DIR)",
    )
    parser.add_argument(
        "--detector",
        default=sources.DEFAULT_DETECTOR,
        help="detector: an ultralytics .pt or export folder, or an OpenVINO IR .xml (default: %(default)s)",
    )
    parser.add_argument("--confidence", type=float, help="default minimum detection score (default: calibrated)")
    parser.add_argument(
        "--large-person-detector",
        default=None,
        help="a second detector for the persons at least --large-person-height pixels tall at its input, run"
        f" beside --detector; 'none' for one detector (default: {sources.DEFAULT_LARGE_PERSON_DETECTOR}, online"
        f" {sources.ONLINE_LARGE_PERSON_DETECTOR}, with the default --detector; none with another)",
    )
    parser.add_argument("--large-person-height", type=float, default=sources.LARGE_PERSON_HEIGHT)
    parser.add_argument(
        "--detector-runtime",
        choices=("openvino", "ultralytics"),
        default="openvino",
        help="runtime for an ultralytics OpenVINO export folder: OpenVINO itself or ultralytics (default: %(default)s)",
    )
    parser.add_argument(
        "--embedder",
        default=sources.DEFAULT_EMBEDDER,
        help="embedder weights: a torchreid .pth or an OpenVINO IR .xml (default: %(default)s)",
    )
    parser.add_argument("--architecture", help="torchreid architecture of a .pth (default: read off its name)")
    parser.add_argument(
        "--backend",
        choices=("torchreid", "onnx", "openvino"),
        default="openvino",
        help="runtime for a torchreid .pth: as is, or exported and checked against torchreid (default: %(default)s)",
    )
    parser.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default=sources.DEFAULT_QUANTIZATION,
        help="quantise an OpenVINO embedder with NNCF, checked against the original (default: %(default)s)",
    )
    parser.add_argument(
        "--calibration-crops",
        type=Path,
        default=settings.calibration_crops,
        help="labelled crops (query/, gallery/) to quantise on and check with (default: $REID_CALIBRATION_CROPS)",
    )
    parser.add_argument("--threshold", type=float, help="default match threshold (default: the calibrated value)")
    parser.add_argument("--detector-name", default=store.DETECTOR_NAME)
    parser.add_argument("--embedder-name", default=store.EMBEDDER_NAME)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "reid-weights",
        help="online: where downloads go (default: %(default)s)",
    )
    parser.add_argument("--only", choices=("detector", "embedder"), help="import just one of the two")


def fetch(name: str, args: argparse.Namespace) -> tuple[Path, str]:
    """The weights called ``name``: from the offline folder, else downloaded; and where from."""
    if args.source is not None:
        folder = Path(args.source).resolve()
        path = folder / name
        if not path.exists():
            raise SystemExit(f"no {name} in {folder}")
        return path, f"local folder {folder}: {name}"
    return sources.download(name, args.cache), f"official download: {name}"


def large_person_detector(args: argparse.Namespace) -> str | None:
    """The second detector the arguments ask for, or None."""
    if args.large_person_detector is None:
        if args.detector != sources.DEFAULT_DETECTOR:
            return None
        online = args.source is None
        return sources.ONLINE_LARGE_PERSON_DETECTOR if online else sources.DEFAULT_LARGE_PERSON_DETECTOR
    return None if args.large_person_detector.lower() == "none" else args.large_person_detector


def import_detector(args: argparse.Namespace):
    """Store the detector the arguments name (with its large-person partner); the stored model."""
    weights, origin = fetch(args.detector, args)
    spec = sources.detector_spec(weights, confidence=args.confidence, runtime=args.detector_runtime)
    payload = [weights]
    partner = large_person_detector(args)
    if partner is not None:
        large, large_origin = fetch(partner, args)
        spec = spec.model_copy(
            update={
                "large_persons": sources.detector_spec(large, runtime=args.detector_runtime),
                "large_person_height": args.large_person_height,
            }
        )
        payload.append(large)
        origin += f"; large persons: {large_origin}"
    model = store.import_detector(payload, spec, source=origin, name=args.detector_name)
    print(f"stored {model.tag} from {origin} ({describe_spec(spec.model_dump())})")
    return model


def import_embedder(args: argparse.Namespace):
    """Store the embedder the arguments name, exported and quantised as asked; the stored model."""
    weights, origin = fetch(args.embedder, args)
    spec = sources.embedder_spec(weights, architecture=args.architecture, threshold=args.threshold)
    with tempfile.TemporaryDirectory() as scratch:
        if spec.backend == "torchreid" and args.backend != "torchreid":
            spec, error = export_torchreid(weights, spec, args.backend, Path(scratch))
            weights = Path(scratch) / spec.weights
            origin += f", exported to {args.backend} (relative error {error:.1e} against torchreid)"
        if args.quantize == "int8":
            weights, spec, origin = quantize(weights, spec, origin, args, Path(scratch) / "int8")
        model = store.import_embedder(weights, spec, source=origin, name=args.embedder_name)
    print(f"stored {model.tag} from {args.embedder} ({spec.architecture}, {spec.backend}, threshold {spec.threshold})")
    return model


def quantize(weights: Path, spec, origin: str, args: argparse.Namespace, target: Path):
    """``(weights, spec, origin)`` of the INT8 embedder, or of the original when no crops are given to check it on."""
    from reid.models.quantize import quantize_embedder

    if args.calibration_crops is None or not Path(args.calibration_crops).is_dir():
        # The original network: as accurate, about 1.4 times slower per crop (docs/accuracy.md).
        print(
            f"reid: no labelled crops to quantise {weights.name} on and check it with (--calibration-crops DIR or"
            f" $REID_CALIBRATION_CROPS; given: {args.calibration_crops}): importing it unquantised",
            file=sys.stderr,
        )
        return weights, spec, origin
    quantized, check = quantize_embedder(weights, spec, Path(args.calibration_crops), target)
    own = sources.calibrated(quantized.weights, "threshold")
    if args.threshold is None and own is not None:
        quantized = quantized.model_copy(update={"threshold": own})
    print(f"quantised {weights.name} to INT8 {check.describe()}")
    return target / quantized.weights, quantized, f"{origin}, quantised to INT8 ({check.describe()})"


def run(args: argparse.Namespace) -> int:
    """Import what the arguments ask for."""
    if args.only != "embedder":
        import_detector(args)
    if args.only != "detector":
        import_embedder(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``reid models import`` as a function."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
