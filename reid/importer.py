"""Put the person detector and the ReID embedder into the BentoML model store
(``reid models import``, ``scripts/import_models.py``).

Offline (``--from DIR`` or ``REID_MODELS_DIR``): the files are read from DIR, e.g. ``../shared/models``.
Online (neither given): the official weights are downloaded (ultralytics ``yolov8n.pt``, Intel's
person-reidentification-retail-0287 from the Open Model Zoo, or torchreid's OSNet MSMT17 weights)
into ``--cache`` first. Nothing downloads at serve time.

    reid models import --from ../shared/models
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from reid import sources, store
from reid.config import get_settings
from reid.export import export_torchreid

DEFAULT_BACKEND = "openvino"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=get_settings().models_dir,
        help="offline: a folder holding the weights (default: $REID_MODELS_DIR)",
    )
    parser.add_argument(
        "--detector",
        help="detector file or export folder name (default: yolov8n.pt, else yolov8n_int8_openvino_model when offline)",
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
        default=DEFAULT_BACKEND,
        help="runtime for a torchreid .pth: as is, or exported and checked against torchreid (default: %(default)s)",
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


def run(args: argparse.Namespace) -> int:
    if args.source is not None:
        source = Path(args.source).resolve()
        detector = sources.find_detector(source, args.detector)
        embedder = source / args.embedder
        origin = f"local folder {source}"
    else:
        detector = sources.download_detector(args.detector or sources.DEFAULT_DETECTORS[0], args.cache)
        embedder = sources.download_embedder(args.embedder, args.cache)
        origin = "official download"
    if args.only != "embedder":
        model = store.import_detector(detector, source=f"{origin}: {detector.name}", name=args.detector_name)
        print(f"stored {model.tag} from {detector}")
    if args.only != "detector":
        if not embedder.is_file():
            raise SystemExit(f"no embedder weights at {embedder}")
        spec = sources.embedder_spec(embedder, architecture=args.architecture, threshold=args.threshold)
        source = f"{origin}: {embedder.name}"
        with tempfile.TemporaryDirectory() as scratch:
            weights = embedder
            if spec.backend == "torchreid" and args.backend != "torchreid":
                spec, error = export_torchreid(embedder, spec, args.backend, Path(scratch))
                weights = Path(scratch) / spec.weights
                source += f", exported to {args.backend} (relative error {error:.1e} against torchreid)"
            model = store.import_embedder(weights, spec, source=source, name=args.embedder_name)
        print(f"stored {model.tag} from {embedder} ({spec.architecture}, {spec.backend}, threshold {spec.threshold})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
