"""The JSON that ``POST /compare`` and ``POST /group`` answer with.

The first five fields of :class:`CompareResponse` are the service's contract and never change;
the rest are additions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

Box = Annotated[
    list[int],
    Field(
        min_length=4,
        max_length=4,
        description="[x1, y1, x2, y2] in integer pixels of the uploaded image, EXIF orientation applied.",
    ),
]


class NotMatchable(StrEnum):
    """Why a found person is not matched: the one vocabulary of the pipeline and the answers."""

    TOO_SMALL = "too_small"  # shorter than REID_MIN_PERSON_HEIGHT
    CUT_OFF = "cut_off"  # height/width under REID_MIN_PERSON_ASPECT
    OVER_LIMIT = "over_limit"  # beyond the image's max_persons_matched most confident persons


class Match(BaseModel):
    """A person of image1 and a person of image2 found to be the same."""

    image1_index: int = Field(ge=0, description="Index of the person in image1.")
    image2_index: int = Field(ge=0, description="Index of the person in image2.")
    similarity: float = Field(description="Cosine similarity of the two persons' embeddings.")
    bbox_image1: Box
    bbox_image2: Box


class Person(BaseModel):
    """One person found in an image."""

    index: int = Field(ge=0)
    bbox: Box
    confidence: float = Field(ge=0.0, le=1.0, description="Detector confidence.")
    matchable: bool = Field(description="False when the person is not compared with the other image's persons.")
    not_matchable_reason: NotMatchable | None = Field(
        None,
        description=(
            "too_small: shorter than REID_MIN_PERSON_HEIGHT; cut_off: height/width under REID_MIN_PERSON_ASPECT;"
            " over_limit: beyond the image's max_persons_matched most confident persons."
        ),
    )


class ImageSize(BaseModel):
    """An uploaded image's size in pixels, EXIF orientation applied."""

    width: int
    height: int


class ModelTags(BaseModel):
    """The stored models that answered, by BentoML model-store tag."""

    detector: str
    embedder: str


class CompareResponse(BaseModel):
    """The answer of ``POST /compare``."""

    image1_person_count: int = Field(ge=0)
    image2_person_count: int = Field(ge=0)
    matches: list[Match] = Field(description="One-to-one matches, in image1 index order.")
    unmatched_image1: list[int] = Field(description="Indices of image1 persons with no match.")
    unmatched_image2: list[int] = Field(description="Indices of image2 persons with no match.")
    # Additions to the contract.
    image1_persons: list[Person] = Field(
        description=(
            "Every person found in image1, ordered left to right (by box centre x, ties top to bottom);"
            " a person's index is its place here."
        )
    )
    image2_persons: list[Person] = Field(description="The same for image2.")
    image1_not_matchable: list[int] = Field(
        description="Indices of image1 persons counted but never matched (see not_matchable_reason)."
    )
    image2_not_matchable: list[int] = Field(description="The same for image2.")
    image1_size: ImageSize
    image2_size: ImageSize
    threshold: float = Field(description="Similarity threshold used: matches have at least this similarity.")
    max_persons_matched: int = Field(description="At most this many persons per image are compared (the cap).")
    models: ModelTags


class GroupPerson(Person):
    """One person found in one image of a group."""

    identity: int | None = Field(description="The identity the person belongs to; null when not matchable.")


class GroupImage(BaseModel):
    """The persons of one image of a group."""

    person_count: int = Field(ge=0)
    size: ImageSize
    persons: list[GroupPerson] = Field(
        description="Every person found, ordered as in /compare (left to right); a person's index is its place here."
    )


class Member(BaseModel):
    """One person of an identity: which image, which person of it."""

    image_index: int = Field(ge=0, description="Index of the image, in upload order.")
    person_index: int = Field(ge=0, description="Index of the person in that image.")
    bbox: Box


class Identity(BaseModel):
    """Persons of different images found to be one person."""

    identity: int = Field(ge=0)
    members: list[Member] = Field(description="At most one person per image, in image order.")


class GroupResponse(BaseModel):
    """The answer of ``POST /group``."""

    image_count: int = Field(ge=2)
    images: list[GroupImage] = Field(description="Per uploaded image, in upload order.")
    identities: list[Identity] = Field(
        description=(
            "Every matchable person in exactly one identity (one seen once is an identity of one member);"
            " the biggest first, then by first appearance."
        )
    )
    threshold: float = Field(description="Similarity threshold used for the links between persons.")
    max_persons_matched: int = Field(description="At most this many persons per image are grouped (the cap).")
    models: ModelTags


class GalleryView(BaseModel):
    """One view of a gallery person: one picture of it, embedded."""

    view_id: str = Field(description="The gallery's id of the view: 32 hexadecimal digits.")
    bbox: Box
    source: str | None = Field(description="Where the picture came from (a camera's name, say), if given.")
    model: str = Field(description="The embedder that made the embedding (BentoML model tag).")
    created: datetime = Field(description="When the view was stored (UTC).")
    has_crop: bool = Field(description="Whether the crop was kept (REID_GALLERY_KEEP_CROPS), for re-embedding.")


class GalleryEntry(BaseModel):
    """One person of the gallery, with its views (their embeddings stay inside the service)."""

    person_id: str = Field(description="The gallery's id of the person: 32 hexadecimal digits.")
    label: str | None = Field(description="The person's label, if any.")
    bbox: Box = Field(description="The box of the person's first view.")
    metadata: dict = Field(description="The person's JSON object ({} if none).")
    model: str = Field(description="The embedder of the person's first view (BentoML model tag).")
    created: datetime = Field(description="When the person was enrolled (UTC).")
    has_crop: bool = Field(description="Whether a view's crop was kept (REID_GALLERY_KEEP_CROPS), for re-embedding.")
    views: list[GalleryView] = Field(description="The person's views, oldest first: at least one.")


class GalleryPage(BaseModel):
    """A page of the gallery, oldest first."""

    persons: list[GalleryEntry]
    total: int = Field(ge=0, description="Persons in the gallery.")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)


class GalleryMatch(BaseModel):
    """A gallery person like a searched one."""

    person_id: str
    label: str | None
    similarity: float = Field(description="Cosine similarity of the searched person and the best of its views.")
    view_id: str = Field(description="The view that matched best.")
    source: str | None = Field(description="That view's source, if given.")


class SearchPerson(Person):
    """A person found in the searched image, with its best gallery matches."""

    matches: list[GalleryMatch] = Field(description="At least the threshold similar, best first; [] if not matchable.")


class SearchResponse(BaseModel):
    """The answer of ``POST /gallery/search``."""

    persons: list[SearchPerson] = Field(description="Every person found, ordered and indexed as in /compare.")
    threshold: float
    top_k: int
    gallery_size: int = Field(ge=0, description="Persons searched.")
    models: ModelTags


class Deleted(BaseModel):
    """What a delete removed."""

    deleted: int = Field(ge=0, description="Persons removed.")


class ViewDeleted(BaseModel):
    """What deleting a view removed."""

    deleted: int = Field(ge=0, le=1, description="Views removed.")
    person: GalleryEntry | None = Field(
        description="The person now; null when its last view went, and with it the person."
    )


class ErrorResponse(BaseModel):
    """The body of every refused request."""

    error: str = Field(description="What was wrong, naming the field at fault.")
    field: str | None = Field(None, description="The form field at fault, if one is.")
