"""The service's upload forms, each declared once: the front door checks bodies against these
declarations, and ``service.py``'s API signatures and the API document take the fields' types,
bounds and descriptions from them.

    /compare, /compare/visualize     image1, image2, threshold?
    /group, /group/visualize         images (2 to REID_MAX_GROUP_IMAGES), threshold?
    /gallery/persons                 image, bbox?, label?, metadata?, source?  (Idempotency-Key?)
    /gallery/persons/{id}/views      image, bbox?, source?                     (Idempotency-Key?)
    /gallery/search                  image, top_k?, threshold?
"""

from __future__ import annotations

from dataclasses import dataclass

from reid.config import Settings
from reid.serving.fields import (
    DEFAULT_TOP_K,
    MAX_LABEL_CHARS,
    MAX_METADATA_BYTES,
    MAX_TOP_K,
    idempotency_key,
    optional_unit_interval,
    parse_bbox,
    parse_label,
    parse_metadata,
    parse_top_k,
)
from reid.serving.http.forms import FileField, TextField, UploadForm

VIEWS_PATH = "/gallery/persons/{person_id}/views"  # an upload among the gallery's mounted routes

THRESHOLD = TextField(
    optional_unit_interval,
    "Similarity a match needs; default: the embedder's calibrated value.",
    {"ge": 0.0, "le": 1.0},
)
SOURCE = TextField(parse_label, f"Where the picture came from (a camera's name), at most {MAX_LABEL_CHARS} characters.")
IDEMPOTENCY = {b"idempotency-key": idempotency_key}


@dataclass(frozen=True)
class Forms:
    """Every upload form of the service."""

    pair: UploadForm
    group: UploadForm
    enrol: UploadForm
    view: UploadForm
    search: UploadForm

    def by_path(self) -> dict[str, UploadForm]:
        """The forms by the paths that take them."""
        return {
            "/compare": self.pair,
            "/compare/visualize": self.pair,
            "/group": self.group,
            "/group/visualize": self.group,
            "/gallery/persons": self.enrol,
            "/gallery/search": self.search,
            VIEWS_PATH: self.view,
        }


def upload_forms(settings: Settings) -> Forms:
    """The forms, with the caps of ``settings``: each file's format, size and pixels are checked
    before BentoML reads the body again."""
    from reid.core.images import read_upload_header

    def check_file(field: str, data: bytes) -> None:
        read_upload_header(data, field, settings)

    image = FileField()
    images = FileField(
        f"2 to REID_MAX_GROUP_IMAGES ({settings.max_group_images}) JPEG or PNG images, in order.",
        (2, settings.max_group_images),
    )

    def bbox(whose: str) -> TextField:
        return TextField(parse_bbox, f"x1,y1,x2,y2 in pixels: {whose}; else the image's only matchable person.")

    return Forms(
        pair=UploadForm({"image1": image, "image2": image, "threshold": THRESHOLD}, check_file),
        group=UploadForm({"images": images, "threshold": THRESHOLD}, check_file, max_bytes=settings.max_group_bytes),
        enrol=UploadForm(
            {
                "image": image,
                "bbox": bbox("the person to enrol"),
                "label": TextField(parse_label, f"Text, at most {MAX_LABEL_CHARS} characters."),
                "metadata": TextField(parse_metadata, f"A JSON object, at most {MAX_METADATA_BYTES // 1024} kB."),
                "source": SOURCE,
            },
            check_file,
            headers=IDEMPOTENCY,
        ),
        view=UploadForm(
            {"image": image, "bbox": bbox("the person"), "source": SOURCE}, check_file, headers=IDEMPOTENCY
        ),
        search=UploadForm(
            {
                "image": image,
                "top_k": TextField(
                    parse_top_k,
                    f"Matches per person (default {DEFAULT_TOP_K}).",
                    {"ge": 1, "le": MAX_TOP_K},
                ),
                "threshold": THRESHOLD,
            },
            check_file,
        ),
    )
