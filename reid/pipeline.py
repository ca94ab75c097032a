"""The compare pipeline: detect in both images, embed every person, match across the images.

It takes the detector and the embedder as async callables, so that the BentoML entry service
(remote services) and in-process tools (local models) run the very same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from reid.boxes import crop, pad_boxes, reading_order, suppress_contained, to_pixel_boxes, unscale_boxes
from reid.config import Settings
from reid.images import downscale_to_max_side
from reid.matching import cosine_similarity, match
from reid.schemas import CompareResponse, ImageSize, Match, ModelTags, Person

NOT_MATCHABLE_TOO_SMALL = "too_small"
NOT_MATCHABLE_CUT_OFF = "cut_off"
NOT_MATCHABLE_OVER_LIMIT = "over_limit"

# list of (H, W, 3) uint8 RGB images -> per image (N, 5) float32 [x1, y1, x2, y2, confidence]
DetectFn = Callable[[list[np.ndarray]], Awaitable[list[np.ndarray]]]
# list of (h, w, 3) uint8 RGB crops -> (N, D) float32, rows of unit length
EmbedFn = Callable[[list[np.ndarray]], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class PersonRules:
    """How detections become persons: which duplicates go, which persons can be matched."""

    max_side: int = 640  # longer side of the copy the detector sees
    containment: float = 0.0  # suppress boxes with this share of their area inside another (0: off)
    min_height: int = 0  # persons shorter than this (uploaded pixels) are not matchable
    min_aspect: float = 0.0  # nor those with height / width under this
    padding: float = 0.0  # crop this fraction of the box size more on every side
    max_persons: int = 50  # most persons per image embedded, the most confident first

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonRules:
        return cls(
            max_side=settings.detect_max_side,
            containment=settings.containment,
            min_height=settings.min_person_height,
            min_aspect=settings.min_person_aspect,
            padding=settings.box_padding,
            max_persons=settings.max_persons,
        )


@dataclass(frozen=True)
class Persons:
    """The persons of one image, in reading order."""

    boxes: np.ndarray  # (N, 4) int64 pixel xyxy in the image as uploaded
    confidence: np.ndarray  # (N,) float32
    reason: np.ndarray  # (N,) str: why a person is not matchable, "" when it is

    @property
    def matchable(self) -> np.ndarray:
        """``(N,)`` bool: big and whole enough to identify, and within the per-image cap."""
        return self.reason == ""


class PairAnalysis(NamedTuple):
    """Everything a compare answer is made of, before the threshold is applied."""

    sizes: list[tuple[int, int]]  # (width, height) per image
    persons: list[Persons]
    similarity: np.ndarray  # (N1, N2) cosine; -1 where either person is not matchable
    max_persons: int  # the per-image cap the persons were taken under


def persons_from_detections(
    detections: np.ndarray, scale: tuple[float, float], width: int, height: int, rules: PersonRules = PersonRules()
) -> Persons:
    """``(N, 5)`` detections on a resized copy to the persons of the uploaded image, in reading order."""
    boxes = to_pixel_boxes(unscale_boxes(detections[:, :4], scale), width, height)
    keep = suppress_contained(boxes, rules.containment)
    boxes, confidence = boxes[keep], detections[keep, 4]
    order = reading_order(boxes)
    boxes, confidence = boxes[order], confidence[order]
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    reason = np.full(len(boxes), "", dtype=object)
    reason[heights < rules.min_aspect * widths] = NOT_MATCHABLE_CUT_OFF
    reason[heights < rules.min_height] = NOT_MATCHABLE_TOO_SMALL
    candidates = np.flatnonzero(reason == "")
    over = candidates[np.argsort(-confidence[candidates], kind="stable")][rules.max_persons :]
    reason[over] = NOT_MATCHABLE_OVER_LIMIT
    return Persons(boxes=boxes, confidence=confidence, reason=reason)


async def find_persons(images: list[np.ndarray], detect: DetectFn, rules: PersonRules) -> list[Persons]:
    """Detect persons in all images with one detector call."""
    resized = [downscale_to_max_side(image, rules.max_side) for image in images]
    detections = await detect([small for small, _ in resized])
    return [
        persons_from_detections(found, scale, image.shape[1], image.shape[0], rules)
        for image, (_, scale), found in zip(images, resized, detections, strict=True)
    ]


async def embed_persons(
    images: list[np.ndarray], persons: list[Persons], embed: EmbedFn, padding: float = 0.0
) -> list[np.ndarray]:
    """Embed the matchable persons of all images with one embedder call; ``(M_i, D)`` per image."""
    crops = [
        crop(image, box)
        for image, found in zip(images, persons)
        for box in pad_boxes(found.boxes[found.matchable], padding, image.shape[1], image.shape[0])
    ]
    if not crops:
        return [np.zeros((0, 0), dtype=np.float32) for _ in images]
    embeddings = await embed(crops)
    bounds = np.cumsum([int(found.matchable.sum()) for found in persons])[:-1]
    return np.split(np.asarray(embeddings, dtype=np.float32), bounds)


async def analyse_pair(
    image1: np.ndarray, image2: np.ndarray, *, detect: DetectFn, embed: EmbedFn, rules: PersonRules
) -> PairAnalysis:
    """Detect, embed and compare the persons of two ``(H, W, 3)`` uint8 RGB images."""
    images = [image1, image2]
    persons = await find_persons(images, detect, rules)
    first, second = await embed_persons(images, persons, embed, rules.padding)
    similarity = np.full((len(persons[0].boxes), len(persons[1].boxes)), -1.0, dtype=np.float32)
    similarity[np.ix_(persons[0].matchable, persons[1].matchable)] = cosine_similarity(first, second)
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    return PairAnalysis(sizes=sizes, persons=persons, similarity=similarity, max_persons=rules.max_persons)


def build_response(analysis: PairAnalysis, threshold: float, models: ModelTags) -> CompareResponse:
    """The answer for one threshold."""
    first, second = analysis.persons
    (width1, height1), (width2, height2) = analysis.sizes
    assignment = match(analysis.similarity, threshold)
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
        image1_not_matchable=np.flatnonzero(~first.matchable).tolist(),
        image2_not_matchable=np.flatnonzero(~second.matchable).tolist(),
        image1_size=ImageSize(width=width1, height=height1),
        image2_size=ImageSize(width=width2, height=height2),
        threshold=threshold,
        max_persons_matched=analysis.max_persons,
        models=models,
    )


def _person_list(persons: Persons) -> list[Person]:
    return [
        Person(
            index=i,
            bbox=box.tolist(),
            confidence=round(float(conf), 6),
            matchable=not why,
            not_matchable_reason=why or None,
        )
        for i, (box, conf, why) in enumerate(zip(persons.boxes, persons.confidence, persons.reason))
    ]


async def compare_images(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    detect: DetectFn,
    embed: EmbedFn,
    rules: PersonRules,
    threshold: float,
    models: ModelTags,
) -> CompareResponse:
    """Which persons of ``image1`` are persons of ``image2``; both ``(H, W, 3)`` uint8 RGB."""
    analysis = await analyse_pair(image1, image2, detect=detect, embed=embed, rules=rules)
    return build_response(analysis, threshold, models)
