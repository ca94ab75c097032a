"""The two model stages on a GPU against the CPU of the same machine, in process.

    python scripts/gpu_benchmark.py --weights osnet_x0_25_msmt17.pth --sequence ../shared/data/mot17/MOT17-04-FRCNN

- embedder: torchreid OSNet x0_25 (the real MSMT17 weights) on the labelled persons of the
  sequence's first frame, ms per crop in one batch, and how far the GPU's embeddings are from
  the CPU's;
- detector: the YOLOv8n network through ultralytics on that frame at 640, ms per image. Built
  from ultralytics' yolov8n.yaml unless --detector names a .pt: only .pt weights run on CUDA,
  and none can be downloaded on machines without internet, so then it times the network with
  untrained weights (the same computation, meaningless boxes).

Needs torch with CUDA; nothing else in the project does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from reid.core.images import read_rgb
from reid.core.tiles import detection_views
from reid.evaluation.datasets import load_mot_sequence
from reid.models.detection import DetectorOptions, UltralyticsDetector
from reid.models.embedding import Embedder, EmbedderOptions
from reid.models.export import relative_error
from reid.models.specs import DetectorSpec, EmbedderSpec


def median_ms(call, repeats: int) -> float:
    call()
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="osnet_x0_25_msmt17.pth")
    parser.add_argument("--sequence", type=Path, required=True, help="a MOT17 sequence folder")
    parser.add_argument("--detector", default="yolov8n.yaml")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    seq = load_mot_sequence(args.sequence)
    frame = seq.frame_numbers()[0]
    image = read_rgb(seq.frames[frame])
    boxes = seq.truth[frame].visible(0.5).boxes.round().astype(int).clip(0)
    crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes if x2 > x1 and y2 > y1]
    small = detection_views(image, (640, 640))[0].pixels
    spec = EmbedderSpec(
        architecture="osnet_x0_25", backend="torchreid", weights=args.weights.name, embedding_dim=512, threshold=0.5
    )
    detector_spec = DetectorSpec(architecture="yolov8n", backend="ultralytics", weights=Path(args.detector).name)
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "crops": len(crops),
        "detector": args.detector,
    }
    embeddings = {}
    for device in ("cpu", "cuda"):
        embedder = Embedder(args.weights.parent, spec, EmbedderOptions(device=device))
        report[f"embed_ms_per_crop_{device}"] = median_ms(lambda e=embedder: e.embed(crops), args.repeats) / len(crops)
        embeddings[device] = embedder.embed(crops)
        detector = UltralyticsDetector(
            Path(args.detector), detector_spec, DetectorOptions(confidence=0.25, device=device)
        )
        report[f"detect_ms_per_image_{device}"] = median_ms(lambda d=detector: d.detect([small]), args.repeats)
    report["embedding_relative_error_gpu_vs_cpu"] = relative_error(embeddings["cpu"], embeddings["cuda"])
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
