"""The plain pipeline the benchmark measures us against: the original design, written plainly,
with the same model files as the service.

One FastAPI route; per request PIL decoding, the detector on one image then the other, the
embedder one crop per call, NumPy cosine, greedy matching. Each model runs the way a plain
script would run it:

- detector: an ultralytics file or export folder through ``YOLO(...).predict``; an OpenVINO IR
  person detector (Intel's) through OpenVINO with its input stretched to the network's size;
- embedder: a torchreid ``.pth`` through torchreid's ``FeatureExtractor``; an OpenVINO IR
  (Intel's) through OpenVINO, one crop per call, with OpenVINO's default settings.

    PLAIN_DETECTOR=... PLAIN_EMBEDDER=... uvicorn tools.plain_pipeline:app --port 3001
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
app = FastAPI()


def openvino_model(path: str):
    import openvino

    return openvino.Core().compile_model(path, "CPU")


if DETECTOR.endswith(".xml"):
    detector_network = openvino_model(DETECTOR)
    _, _, DETECTOR_HEIGHT, DETECTOR_WIDTH = detector_network.inputs[0].shape

    def persons(image: Image.Image) -> list[list[int]]:
        bgr = np.array(image.resize((DETECTOR_WIDTH, DETECTOR_HEIGHT)))[:, :, ::-1]
        boxes = detector_network(bgr.transpose(2, 0, 1)[None].astype(np.float32))["boxes"]
        boxes = boxes[boxes[:, 4] >= CONFIDENCE]
        sx, sy = image.width / DETECTOR_WIDTH, image.height / DETECTOR_HEIGHT
        return [[int(x1 * sx), int(y1 * sy), int(x2 * sx), int(y2 * sy)] for x1, y1, x2, y2, _ in boxes]

else:
    from ultralytics import YOLO

    yolo = YOLO(DETECTOR, task="detect")

    def persons(image: Image.Image) -> list[list[int]]:
        result = yolo.predict(np.array(image)[:, :, ::-1], classes=[0], conf=CONFIDENCE, verbose=False)[0]
        return [[int(v) for v in box] for box in result.boxes.xyxy.tolist()]


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
