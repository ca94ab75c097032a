"""The gallery's uploads: enrolling a person, adding a view, searching (through
:class:`~reid.serving.entry.UploadHandler`), and how a stored person is shown. Their forms are
:mod:`reid.serving.forms`; the management routes (list, get, edit, merge, delete) are
:mod:`reid.serving.gallery_api`.

    POST   /gallery/persons                   image, bbox?, label?, metadata?, source? -> GalleryEntry
                                              (header Idempotency-Key?)
    POST   /gallery/persons/{person_id}/views image, bbox?, source?  -> GalleryEntry
    POST   /gallery/search                    image, top_k?, threshold?  -> SearchResponse
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable

import numpy as np

from reid.config import Settings
from reid.core.boxes import crop, pad_boxes
from reid.core.pipeline import (
    PersonRules,
    Persons,
    ReIDPipeline,
    person_list,
    persons_from_detections,
)
from reid.core.visualize import encode_jpeg
from reid.errors import BadForm, NotFound
from reid.gallery.store import Gallery, StoredPerson
from reid.schemas import GalleryEntry, GalleryMatch, NotMatchable, SearchPerson, SearchResponse
from reid.serving.fields import DEFAULT_TOP_K

MAX_PAGE = 100
DEFAULT_PAGE = 20
# A kept crop is stored at most this tall: enough for any ReID network's input.
CROP_HEIGHT = 512
# A gallery write ends this long before its request's deadline, so that a write is never
# committed after its request was answered 504.
WRITE_MARGIN_S = 1.0


def entry(person: StoredPerson) -> GalleryEntry:
    """A stored person as the API shows it (times, seconds since the epoch, as UTC datetimes)."""
    return GalleryEntry.model_validate(person, from_attributes=True)


class GalleryHandler:
    """Enrols persons of decoded images into the gallery and searches it."""

    def __init__(self, settings: Settings, pipeline: ReIDPipeline, gallery: Gallery) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.gallery = gallery

    async def enrol(
        self,
        image: np.ndarray,
        box: list[int] | None,
        label: str | None,
        metadata: dict,
        source: str | None,
        key: tuple[str, str] | None,
    ) -> GalleryEntry:
        """Store a new person: the one in ``box`` (checked by :func:`parse_bbox`) if the person
        rules take it, or the image's one matchable person; ``key``: the request's idempotency
        key and fingerprint. The write ends (committed or rolled back) before the request's deadline."""
        add = functools.partial(self.gallery.add, label=label, metadata=metadata)
        try:
            stored = await self._store(image, box, add, source, key)
        except ValueError as error:
            raise BadForm(f"cannot be stored as standard JSON ({error})", field="metadata") from error
        assert stored is not None  # a new person is always stored
        return stored

    async def add_view(
        self, person_id: str, image: np.ndarray, box: list[int] | None, source: str | None, key: tuple[str, str] | None
    ) -> GalleryEntry:
        """Give a stored person one more view, found in the image as :meth:`enrol` finds a
        person; NotFound when there is no such person."""
        stored = await self._store(image, box, functools.partial(self.gallery.add_view, person_id), source, key)
        if stored is None:
            raise NotFound(f"no person {person_id[:40]} in the gallery")
        return stored

    async def _store(
        self,
        image: np.ndarray,
        box: list[int] | None,
        write: Callable[..., StoredPerson | None],
        source: str | None,
        key: tuple[str, str] | None,
    ) -> GalleryEntry | None:
        """The image's person embedded and written by ``write(embedding, box, crop, ...)``, within the deadline."""
        from reid.serving.entry import DEADLINE

        person = await (self._person_in_box(image, box) if box is not None else self._only_person(image))
        assert person.embeddings is not None
        kept = (
            await asyncio.to_thread(self._crop_jpeg, image, person.boxes[0])
            if self.settings.gallery_keep_crops
            else None
        )
        deadline = DEADLINE.get() - WRITE_MARGIN_S
        store = functools.partial(write, source=source, key=key, deadline=deadline)
        stored = await asyncio.to_thread(store, person.embeddings[0], person.boxes[0].tolist(), crop=kept)
        return None if stored is None else entry(stored)

    async def _person_in_box(self, image: np.ndarray, box: list[int]) -> Persons:
        """The person in ``box``, embedded, when /compare would match it (else BadForm why not)."""
        height, width = image.shape[:2]
        if box[2] > width or box[3] > height:
            raise BadForm(f"outside the {width}x{height} image", field="bbox")
        detection = np.array([[*box, 1.0]], np.float32)
        given = persons_from_detections(detection, width, height, self.pipeline.rules)
        if not given.matchable[0]:
            raise BadForm(_not_matchable_reason(given.reason[0], self.pipeline.rules), field="bbox")
        return (await self.pipeline.embed_persons([image], [given]))[0]

    async def _only_person(self, image: np.ndarray) -> Persons:
        """The image's one matchable person, embedded (else BadForm)."""
        found = (await self.pipeline.persons([image]))[0]
        count = int(found.matchable.sum())
        if count != 1:
            raise BadForm(
                f"holds {count} matchable persons ({len(found.boxes)} found in all): send an image of one"
                " person, or give the bbox of the one to enrol",
                field="image",
            )
        return found.take(found.matchable)

    async def search(self, image: np.ndarray, top_k: int | None, threshold: float | None) -> SearchResponse:
        """Every person of the image with its best gallery matches."""
        k = top_k or DEFAULT_TOP_K
        chosen = self.pipeline.threshold_or_default(threshold)
        found = (await self.pipeline.persons([image]))[0]
        assert found.embeddings is not None
        embeddings = found.embeddings
        hits, size = await asyncio.to_thread(lambda: (self.gallery.search(embeddings, k, chosen), len(self.gallery)))
        matches_of = dict(zip(np.flatnonzero(found.matchable).tolist(), hits))
        persons = [
            SearchPerson(
                **person.model_dump(),
                matches=[
                    GalleryMatch(
                        person_id=hit.person_id,
                        label=hit.label,
                        similarity=round(min(hit.similarity, 1.0), 6),
                        view_id=hit.view_id,
                        source=hit.source,
                    )
                    for hit in matches_of.get(person.index, [])
                ],
            )
            for person in person_list(found)
        ]
        return SearchResponse(
            persons=persons, threshold=chosen, top_k=k, gallery_size=size, models=self.pipeline.models
        )

    def _crop_jpeg(self, image: np.ndarray, box: np.ndarray) -> bytes:
        """The crop the embedder saw (padded as the pipeline pads), as JPEG for re-embedding."""
        import cv2

        padded = pad_boxes(box[None], self.pipeline.rules.box_padding, image.shape[1], image.shape[0])[0]
        piece = crop(image, padded)
        if piece.shape[0] > CROP_HEIGHT:
            scale = CROP_HEIGHT / piece.shape[0]
            piece = cv2.resize(
                piece, (max(1, round(piece.shape[1] * scale)), CROP_HEIGHT), interpolation=cv2.INTER_AREA
            )
        return encode_jpeg(piece, quality=95)


def _not_matchable_reason(reason: str, rules: PersonRules) -> str:
    """Why /compare would not match a person in the box, in words."""
    if reason == NotMatchable.TOO_SMALL:
        return f"too_small: a person must be at least {rules.min_person_height} px tall (REID_MIN_PERSON_HEIGHT)"
    if reason == NotMatchable.CUT_OFF:
        return (
            f"cut_off: a person's box must be at least {rules.min_person_aspect:g} times as tall as it is wide"
            " (REID_MIN_PERSON_ASPECT)"
        )
    return f"not matchable: {reason}"


def write_key(key: bytes | None, image: bytes, fields: list) -> tuple[str, str] | None:
    """``(idempotency key, fingerprint)`` of a gallery write sent with a key: the fingerprint
    tells a retry (the same image and fields) from a key reused for another write."""
    if key is None:
        return None
    digest = hashlib.sha256(image)
    digest.update(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return key.decode("ascii"), digest.hexdigest()
