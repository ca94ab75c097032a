"""The plain pipeline the benchmark measures us against: the original design, written plainly.

One FastAPI route; per request PIL decoding, YOLO on one image then the other, torchreid's
FeatureExtractor on each image's crops, NumPy cosine, greedy matching. Same model files as the
service. Run by scripts/benchmark.py:

    PLAIN_DETECTOR=... PLAIN_EMBEDDER=... uvicorn scripts.plain_pipeline:app --port 3001
"""

from __future__ import annotations

import io
import os
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, UploadFile
from PIL import Image
from torchreid.reid.utils import FeatureExtractor
from ultralytics import YOLO

detector = YOLO(os.environ["PLAIN_DETECTOR"], task="detect")
extractor = FeatureExtractor(
    model_name=os.environ.get("PLAIN_ARCHITECTURE", "osnet_x0_25"),
    model_path=os.environ["PLAIN_EMBEDDER"],
    device="cpu",
    verbose=False,
)
app = FastAPI()


def persons(image: Image.Image) -> list[list[int]]:
    result = detector.predict(np.array(image)[:, :, ::-1], classes=[0], conf=0.25, verbose=False)[0]
    return [[int(v) for v in box] for box in result.boxes.xyxy.tolist()]


def embed(image: Image.Image, boxes: list[list[int]]) -> np.ndarray:
    if not boxes:
        return np.zeros((0, 512), np.float32)
    crops = [np.array(image.crop(tuple(box))) for box in boxes]
    features = extractor(crops).numpy()
    return features / np.linalg.norm(features, axis=1, keepdims=True)


@app.post("/compare")
async def compare(
    image1: Annotated[UploadFile, File()],
    image2: Annotated[UploadFile, File()],
    threshold: Annotated[float, Form()] = 0.6,
):
    first = Image.open(io.BytesIO(await image1.read())).convert("RGB")
    second = Image.open(io.BytesIO(await image2.read())).convert("RGB")
    boxes1, boxes2 = persons(first), persons(second)
    similarity = embed(first, boxes1) @ embed(second, boxes2).T
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
