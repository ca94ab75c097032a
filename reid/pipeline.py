"""The compare pipeline: detect in both images, embed every person, match across the images.

It takes the detector and the embedder as async callables, so that the BentoML entry service
(remote services) and in-process tools (local models) run the very same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import numpy as np

from reid.boxes import crop, reading_order, to_pixel_boxes, unscale_boxes
from reid.images import downscale_to_max_side
from reid.matching import cosine_similarity, match
from reid.schemas import CompareResponse, ImageSize, Match, ModelTags, Person

# list of (H, W, 3) uint8 RGB images -> per image (N, 5) float32 [x1, y1, x2, y2, confidence]
DetectFn = Callable[[list[np.ndarray]], Awaitable[list[np.ndarray]]]
# list of (h, w, 3) uint8 RGB crops -> (N, D) float32, rows of unit length
EmbedFn = Callable[[list[np.ndarray]], Awaitable[np.ndarray]]


class Persons(NamedTuple):
    """The persons of one image, in reading order."""

    boxes: np.ndarray  # (N, 4) int64 pixel xyxy in the image as uploaded
    confidence: np.ndarray  # (N,) float32


def persons_from_detections(detections: np.ndarray, scale: tuple[float, float], width: int, height: int) -> Persons:
    """Map ``(N, 5)`` detections on a resized image back to the uploaded image, in reading order."""
    boxes = to_pixel_boxes(unscale_boxes(detections[:, :4], scale), width, height)
    order = reading_order(boxes)
    return Persons(boxes=boxes[order], confidence=detections[order, 4])


async def find_persons(images: list[np.ndarray], detect: DetectFn, max_side: int) -> list[Persons]:
    """Detect persons in all images with one detector call."""
    resized = [downscale_to_max_side(image, max_side) for image in images]
    detections = await detect([small for small, _ in resized])
    return [
        persons_from_detections(found, scale, image.shape[1], image.shape[0])
        for image, (_, scale), found in zip(images, resized, detections, strict=True)
    ]


async def embed_persons(images: list[np.ndarray], persons: list[Persons], embed: EmbedFn) -> list[np.ndarray]:
    """Embed the persons of all images with one embedder call; ``(N_i, D)`` per image."""
    crops = [crop(image, box) for image, found in zip(images, persons) for box in found.boxes]
    if not crops:
        return [np.zeros((0, 0), dtype=np.float32) for _ in images]
    embeddings = await embed(crops)
    bounds = np.cumsum([len(found.boxes) for found in persons])[:-1]
    return np.split(np.asarray(embeddings, dtype=np.float32), bounds)


def build_response(
    images: list[np.ndarray],
    persons: list[Persons],
    similarity: np.ndarray,
    threshold: float,
    models: ModelTags,
) -> CompareResponse:
    first, second = persons
    assignment = match(similarity, threshold)
    return CompareResponse(
        image1_person_count=len(first.boxes),
        image2_person_count=len(second.boxes),
        matches=[
            Match(
                image1_index=int(i),
                image2_index=int(j),
                similarity=round(float(s), 6),
                bbox_image1=first.boxes[i].tolist(),
                bbox_image2=second.boxes[j].tolist(),
            )
            for i, j, s in zip(assignment.rows, assignment.cols, assignment.similarity)
        ],
        unmatched_image1=assignment.unmatched_rows.tolist(),
        unmatched_image2=assignment.unmatched_cols.tolist(),
        image1_persons=_person_list(first),
        image2_persons=_person_list(second),
        image1_size=ImageSize(width=images[0].shape[1], height=images[0].shape[0]),
        image2_size=ImageSize(width=images[1].shape[1], height=images[1].shape[0]),
        threshold=threshold,
        models=models,
    )


def _person_list(persons: Persons) -> list[Person]:
    return [
        Person(index=i, bbox=box.tolist(), confidence=round(float(conf), 6))
        for i, (box, conf) in enumerate(zip(persons.boxes, persons.confidence))
    ]


async def compare_images(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    detect: DetectFn,
    embed: EmbedFn,
    threshold: float,
    max_side: int,
    models: ModelTags,
) -> CompareResponse:
    """Which persons of ``image1`` are persons of ``image2``; both ``(H, W, 3)`` uint8 RGB."""
    images = [image1, image2]
    persons = await find_persons(images, detect, max_side)
    first, second = await embed_persons(images, persons, embed)
    return build_response(images, persons, cosine_similarity(first, second), threshold, models)
