"""The plain pipeline the benchmark measures us against: the original design, written plainly,
with the same model files as the service.

One FastAPI route; per request PIL decoding, the detector on one image then the other, the
embedder one crop per call, NumPy cosine, greedy matching. Each model runs the way a plain
script would run it:

- detector: an ultralytics file or export folder through ``YOLO(...).predict``; an OpenVINO IR
  person detector (Intel's) through OpenVINO with its input stretched to the network's size;
  with ``PLAIN_LARGE_DETECTOR``, both, one after the other, fused by person height with the
  service's rule (``reid.core.fusion``);
- embedder: a torchreid ``.pth`` through torchreid's ``FeatureExtractor``; an OpenVINO IR
  (Intel's) through OpenVINO, one crop per call, with OpenVINO's default settings.

    PLAIN_DETECTOR=... PLAIN_EMBEDDER=... uvicorn reid_devtools.plain_pipeline:app --port 3001
"""

from __future__ import annotations

import io
import os
from typing import Annotated

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, UploadFile
from PIL import Image

DETECTOR = os.environ["PLAIN_DETECTOR"]
EMBEDDER = os.environ["PLAIN_EMBEDDER"]
CONFIDENCE = float(os.environ.get("PLAIN_CONFIDENCE", "0.25"))
# Optional: a YOLO file for the tall persons, fused by height as the service fuses them.
LARGE_DETECTOR = os.environ.get("PLAIN_LARGE_DETECTOR")
LARGE_CONFIDENCE = float(os.environ.get("PLAIN_LARGE_CONFIDENCE", "0.25"))
LARGE_HEIGHT = float(os.environ.get("PLAIN_LARGE_HEIGHT", "80"))
app = FastAPI()


def openvino_model(path: str):
    import openvino

    return openvino.Core().compile_model(path, "CPU")


def detector(path: str, confidence: float):
    """``image -> (N, 5)`` rows of x1, y1, x2, y2, score in image pixels, for one detector file."""
    if path.endswith(".xml"):
        network = openvino_model(path)
        _, _, height, width = network.inputs[0].shape

        def rows(image: Image.Image) -> np.ndarray:
            bgr = np.array(image.resize((width, height)))[:, :, ::-1]
            boxes = network(bgr.transpose(2, 0, 1)[None].astype(np.float32))["boxes"]
            boxes = boxes[boxes[:, 4] >= confidence]
            return boxes * np.array([image.width / width, image.height / height] * 2 + [1], np.float32)

        return rows
    from ultralytics import YOLO

    yolo = YOLO(path, task="detect")

    def rows(image: Image.Image) -> np.ndarray:
        result = yolo.predict(np.array(image)[:, :, ::-1], classes=[0], conf=confidence, verbose=False)[0]
        return np.concatenate([result.boxes.xyxy.numpy(), result.boxes.conf.numpy()[:, None]], axis=1)

    return rows


small_persons = detector(DETECTOR, CONFIDENCE)
if LARGE_DETECTOR:
    from reid.core.fusion import fuse_by_height

    large_persons = detector(LARGE_DETECTOR, LARGE_CONFIDENCE)

    def found(image: Image.Image) -> np.ndarray:
        # The same rule as the service: persons from LARGE_HEIGHT pixels tall at YOLO's 640 input.
        min_height = LARGE_HEIGHT / min(640 / image.width, 640 / image.height)
        return fuse_by_height(small_persons(image), large_persons(image), min_height)

else:
    found = small_persons


def persons(image: Image.Image) -> list[list[int]]:
    return [[int(v) for v in row[:4]] for row in found(image)]


if EMBEDDER.endswith(".xml"):
    embedder_network = openvino_model(EMBEDDER)

    def features(crops: list[np.ndarray]) -> np.ndarray:
        rows = []
        for crop in crops:
            bgr = cv2.resize(crop, (128, 256))[:, :, ::-1]
            rows.append(embedder_network(bgr.transpose(2, 0, 1)[None].astype(np.float32))[0][0])
        return np.array(rows)

else:
    from torchreid.reid.utils import FeatureExtractor

    extractor = FeatureExtractor(
        model_name=os.environ.get("PLAIN_ARCHITECTURE", "osnet_x0_25"), model_path=EMBEDDER, device="cpu", verbose=False
    )

    def features(crops: list[np.ndarray]) -> np.ndarray:
        return extractor(crops).numpy()


def embed(image: Image.Image, boxes: list[list[int]]) -> np.ndarray:
    if not boxes:
        return np.zeros((0, 1), np.float32)
    found = features([np.array(image.crop(tuple(box))) for box in boxes])
    return found / np.linalg.norm(found, axis=1, keepdims=True)


@app.post("/compare")
async def compare(
    image1: Annotated[UploadFile, File()],
    image2: Annotated[UploadFile, File()],
    threshold: Annotated[float, Form()] = 0.5,
):
    first = Image.open(io.BytesIO(await image1.read())).convert("RGB")
    second = Image.open(io.BytesIO(await image2.read())).convert("RGB")
    boxes1, boxes2 = persons(first), persons(second)
    embeddings1, embeddings2 = embed(first, boxes1), embed(second, boxes2)
    similarity = embeddings1 @ embeddings2.T if len(boxes1) and len(boxes2) else np.zeros((len(boxes1), len(boxes2)))
    matches, used1, used2 = [], set(), set()
    for flat in np.argsort(-similarity, axis=None):
        i, j = np.unravel_index(flat, similarity.shape)
        if similarity[i, j] < threshold:
            break
        if i in used1 or j in used2:
            continue
        used1.add(i)
        used2.add(j)
        matches.append(
            {
                "image1_index": int(i),
                "image2_index": int(j),
                "similarity": float(similarity[i, j]),
                "bbox_image1": boxes1[i],
                "bbox_image2": boxes2[j],
            }
        )
    return {
        "image1_person_count": len(boxes1),
        "image2_person_count": len(boxes2),
        "matches": matches,
        "unmatched_image1": [i for i in range(len(boxes1)) if i not in used1],
        "unmatched_image2": [j for j in range(len(boxes2)) if j not in used2],
    }


@app.get("/readyz")
def readyz() -> str:
    return "ok"
