"""The compare pipeline: find the persons of each image, embed them, match across the images.

:class:`ReIDPipeline` takes the detector and the embedder as async callables, so that the
BentoML entry service (remote model services), the in-process :class:`reid.assembly.LocalReID`,
the warm-up and the evaluation run the very same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from reid.core.boxes import box_area, containment, crop, pad_boxes, reading_order, to_pixel_boxes
from reid.core.grouping import group_identities, ordered_identities
from reid.core.matching import cosine_similarity, match
from reid.core.tiles import detection_views, merge_views
from reid.schemas import (
    CompareResponse,
    GroupImage,
    GroupPerson,
    GroupResponse,
    Identity,
    ImageSize,
    Match,
    Member,
    ModelTags,
    NotMatchable,
    Person,
)

# list of (h, w, 3) uint8 RGB views -> per view (N, 5) float32 [x1, y1, x2, y2, score] in its pixels
DetectFn = Callable[[list[np.ndarray]], Awaitable[list[np.ndarray]]]
# list of (h, w, 3) uint8 RGB crops -> (N, D) float32, rows of unit length
EmbedFn = Callable[[list[np.ndarray]], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class PersonRules:
    """How detections become persons: what the detector is shown, which boxes are the same
    person twice, which persons can be matched. Field names are the settings' names."""

    detector_input: tuple[int, int] = (640, 640)  # (width, height) the detector's network takes
    tile_zoom: float = 0.0  # also detect on tiles this many times finer than the whole image (0: off)
    containment: float = 0.0  # a box with this share of its area inside another's may be a partial view (0: off)
    duplicate_similarity: float = 1.0  # ... and is one when its embedding is at least this similar to the other's
    min_person_height: int = 0  # persons shorter than this (uploaded pixels) are not matchable
    min_person_aspect: float = 0.0  # nor those with height / width under this
    box_padding: float = 0.0  # crop this fraction of the box size more on every side
    max_persons: int = 50  # most persons per image embedded, the most confident first


@dataclass(frozen=True)
class Persons:
    """The persons of one image, in reading order."""

    boxes: np.ndarray  # (N, 4) int64 pixel xyxy in the image as uploaded
    confidence: np.ndarray  # (N,) float32
    reason: np.ndarray  # (N,) str: why a person is not matchable, "" when it is
    embeddings: np.ndarray | None = None  # (M, D) float32 of the M matchable persons, in order; None before embedding

    @property
    def matchable(self) -> np.ndarray:
        """``(N,)`` bool: big and whole enough to identify, and within the per-image cap."""
        return self.reason == ""

    def take(self, keep: np.ndarray) -> Persons:
        """The persons where the ``(N,)`` bool ``keep`` is true, embeddings included."""
        embeddings = None if self.embeddings is None else self.embeddings[keep[self.matchable]]
        return Persons(self.boxes[keep], self.confidence[keep], self.reason[keep], embeddings)


class PairAnalysis(NamedTuple):
    """Everything a compare answer is made of, before the threshold is applied."""

    sizes: list[tuple[int, int]]  # (width, height) per image
    persons: list[Persons]
    similarity: np.ndarray  # (N1, N2) cosine; -1 where either person is not matchable
    max_persons: int  # the per-image cap the persons were taken under


def persons_from_detections(detections: np.ndarray, width: int, height: int, rules: PersonRules) -> Persons:
    """``(N, 5)`` detections in image pixels to the persons of the image, in reading order."""
    boxes = to_pixel_boxes(detections[:, :4], width, height)
    confidence = detections[:, 4].astype(np.float32)
    order = reading_order(boxes)
    boxes, confidence = boxes[order], confidence[order]
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    reason = np.full(len(boxes), "", dtype=object)
    reason[heights < rules.min_person_aspect * widths] = NotMatchable.CUT_OFF
    reason[heights < rules.min_person_height] = NotMatchable.TOO_SMALL
    candidates = np.flatnonzero(reason == "")
    over = candidates[np.argsort(-confidence[candidates], kind="stable")][rules.max_persons :]
    reason[over] = NotMatchable.OVER_LIMIT
    return Persons(boxes=boxes, confidence=confidence, reason=reason)


def partial_views(persons: Persons, rules: PersonRules) -> np.ndarray:
    """``(N,)`` bool: matchable persons that are another matchable person seen again.

    A box mostly inside a bigger one (``containment``) is either a partial view of that person
    or a different person behind or in front; only the embeddings tell, so it goes only when
    its embedding is at least ``duplicate_similarity`` like the bigger box's.
    """
    duplicate = np.zeros(len(persons.boxes), dtype=bool)
    rows = np.flatnonzero(persons.matchable)
    if rules.containment <= 0 or len(rows) < 2 or persons.embeddings is None:
        return duplicate
    boxes = persons.boxes[rows]
    area = box_area(boxes)
    inside = (containment(boxes) >= rules.containment) & (area[:, None] > area[None, :])  # [i, j]: j in i
    alike = cosine_similarity(persons.embeddings, persons.embeddings) >= rules.duplicate_similarity
    duplicate[rows] = (inside & alike).any(axis=0)
    return duplicate


def pair_analysis(first: Persons, second: Persons, sizes: list[tuple[int, int]], max_persons: int) -> PairAnalysis:
    """Two images' embedded persons, of images of ``(width, height)`` ``sizes``, as a pair: their
    ``(N1, N2)`` similarity, -1 where either person is not matchable."""
    assert first.embeddings is not None and second.embeddings is not None
    similarity = np.full((len(first.boxes), len(second.boxes)), -1.0, dtype=np.float32)
    similarity[np.ix_(first.matchable, second.matchable)] = cosine_similarity(first.embeddings, second.embeddings)
    return PairAnalysis(sizes=sizes, persons=[first, second], similarity=similarity, max_persons=max_persons)


@dataclass(frozen=True)
class ReIDPipeline:
    """Answers a compare from decoded images: the detector and embedder as async callables,
    the person rules, the default threshold and the tags of the models."""

    detect: DetectFn
    embed: EmbedFn
    rules: PersonRules
    threshold: float
    models: ModelTags

    async def find_persons(self, images: list[np.ndarray]) -> list[Persons]:
        """Detect persons in all images (whole and tiles) with one detector call."""
        views = [detection_views(image, self.rules.detector_input, self.rules.tile_zoom) for image in images]
        found = await self.detect([view.pixels for image_views in views for view in image_views])
        persons, start = [], 0
        for image, image_views in zip(images, views, strict=True):
            rows = merge_views(found[start : start + len(image_views)], image_views)
            start += len(image_views)
            persons.append(persons_from_detections(rows, image.shape[1], image.shape[0], self.rules))
        return persons

    async def embed_persons(self, images: list[np.ndarray], persons: list[Persons]) -> list[Persons]:
        """The persons with the embeddings of their matchable members, all in one embedder call."""
        crops = [
            crop(image, box)
            for image, found in zip(images, persons)
            for box in pad_boxes(found.boxes[found.matchable], self.rules.box_padding, image.shape[1], image.shape[0])
        ]
        embeddings = np.asarray(await self.embed(crops), dtype=np.float32) if crops else np.zeros((0, 0), np.float32)
        bounds = np.cumsum([int(found.matchable.sum()) for found in persons])[:-1]
        return [replace(found, embeddings=e) for found, e in zip(persons, np.split(embeddings, bounds))]

    async def persons(self, images: list[np.ndarray]) -> list[Persons]:
        """The embedded persons of each ``(H, W, 3)`` uint8 RGB image, partial views removed."""
        embedded = await self.embed_persons(images, await self.find_persons(images))
        return [found.take(~partial_views(found, self.rules)) for found in embedded]

    async def analyse(self, image1: np.ndarray, image2: np.ndarray) -> PairAnalysis:
        """Everything about two images' persons that a compare answer needs."""
        first, second = await self.persons([image1, image2])
        sizes = [(image.shape[1], image.shape[0]) for image in (image1, image2)]
        return pair_analysis(first, second, sizes, self.rules.max_persons)

    def threshold_or_default(self, threshold: float | None) -> float:
        """The threshold a request asked for, or the embedder's calibrated one."""
        return self.threshold if threshold is None else threshold

    async def compare(self, image1: np.ndarray, image2: np.ndarray, threshold: float | None = None) -> CompareResponse:
        """Which persons of ``image1`` are persons of ``image2``."""
        analysis = await self.analyse(image1, image2)
        return build_response(analysis, self.threshold_or_default(threshold), self.models)

    async def group(self, images: list[np.ndarray], threshold: float | None = None) -> GroupResponse:
        """Which persons of the ``images`` are the same people, with one detector and one
        embedder call for all of them."""
        persons = await self.persons(images)
        sizes = [(image.shape[1], image.shape[0]) for image in images]
        chosen = self.threshold_or_default(threshold)
        return build_group_response(persons, sizes, chosen, self.rules.max_persons, self.models)


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
        image1_persons=person_list(first),
        image2_persons=person_list(second),
        image1_not_matchable=np.flatnonzero(~first.matchable).tolist(),
        image2_not_matchable=np.flatnonzero(~second.matchable).tolist(),
        image1_size=ImageSize(width=width1, height=height1),
        image2_size=ImageSize(width=width2, height=height2),
        threshold=threshold,
        max_persons_matched=analysis.max_persons,
        models=models,
    )


def build_group_response(
    persons: list[Persons], sizes: list[tuple[int, int]], threshold: float, max_persons: int, models: ModelTags
) -> GroupResponse:
    """The answer of a group: the embedded persons of each image (of size ``(width, height)``)
    joined into identities at ``threshold``."""
    embeddings = [found.embeddings for found in persons]
    assert all(e is not None for e in embeddings), "persons must be embedded"
    identities = ordered_identities(group_identities(embeddings, threshold))  # type: ignore[arg-type]
    return response_from_identities(persons, sizes, identities, threshold, max_persons, models)


def response_from_identities(
    persons: list[Persons],
    sizes: list[tuple[int, int]],
    identities: list[np.ndarray],
    threshold: float,
    max_persons: int,
    models: ModelTags,
) -> GroupResponse:
    """The answer of a group whose matchable persons are in the given identities: per image,
    ``(M_i,)`` int64 identity numbers, 0, 1, ... in answer order."""
    members: dict[int, list[Member]] = {}
    images = []
    for image_index, (found, identity, (width, height)) in enumerate(zip(persons, identities, sizes)):
        of_person = np.full(len(found.boxes), -1, np.int64)
        of_person[found.matchable] = identity
        for person_index in np.flatnonzero(found.matchable):
            box = found.boxes[person_index].tolist()
            member = Member(image_index=image_index, person_index=int(person_index), bbox=box)
            members.setdefault(int(of_person[person_index]), []).append(member)
        listed = [
            GroupPerson(**person.model_dump(), identity=None if of_person[i] < 0 else int(of_person[i]))
            for i, person in enumerate(person_list(found))
        ]
        images.append(
            GroupImage(person_count=len(found.boxes), size=ImageSize(width=width, height=height), persons=listed)
        )
    return GroupResponse(
        image_count=len(persons),
        images=images,
        identities=[Identity(identity=k, members=members[k]) for k in sorted(members)],
        threshold=threshold,
        max_persons_matched=max_persons,
        models=models,
    )


def person_list(persons: Persons) -> list[Person]:
    """The persons of one image as the answers list them."""
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
