"""Where the shared models and labelled data are (``../shared`` beside the checkout, or
``REID_SHARED_DIR``), and the MOT17 sequences in them."""

from __future__ import annotations

import os
from pathlib import Path

from reid.evaluation.datasets import MotSequence, load_mot_sequence

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REID_SHARED_DIR", ROOT.parent / "shared")).resolve()
MODELS = SHARED / "models"
DATA = SHARED / "data"
CALIBRATION_CROPS = DATA / "cuhk03-pair1"


def sequence(name: str) -> MotSequence:
    return load_mot_sequence(DATA / "mot17" / name)


def all_sequences() -> list[MotSequence]:
    return [load_mot_sequence(folder) for folder in sorted((DATA / "mot17").iterdir())]


def first_and_last(seq: MotSequence) -> tuple[int, int]:
    frames = seq.frame_numbers()
    return frames[0], frames[-1]


def person_photo(name: str = "MOT17-09-FRCNN") -> bytes:
    """A JPEG of one person: the tallest labelled person of the sequence's first frame, cut out."""
    import io

    from PIL import Image

    seq = sequence(name)
    first = seq.frame_numbers()[0]
    truth = seq.truth[first]
    heights = truth.boxes[:, 3] - truth.boxes[:, 1]
    x1, y1, x2, y2 = (round(v) for v in truth.boxes[int(heights.argmax())])
    buffer = io.BytesIO()
    Image.open(seq.frames[first]).crop((x1, y1, x2, y2)).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def hall_frames() -> list[Path]:
    """The two-camera hall's frames, in order."""
    return sorted((DATA / "two-camera-hall" / "HALL-3P" / "img1").iterdir())


def hall_pair() -> dict:
    """The two-camera hall's first and last frames as /compare's files: a light compare."""
    frames = hall_frames()
    return {
        "image1": ("a.jpg", frames[0].read_bytes(), "image/jpeg"),
        "image2": ("b.jpg", frames[-1].read_bytes(), "image/jpeg"),
    }


def photo_size(photo: bytes) -> tuple[int, int]:
    """An encoded image's (width, height)."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(photo)).size


def enrolment_form(photo: bytes, **fields: str) -> dict:
    """httpx arguments enrolling the photo's person: by default the whole photo's box (a photo
    from :func:`person_photo` shows bits of others too)."""
    width, height = photo_size(photo)
    return {"files": {"image": ("p.jpg", photo, "image/jpeg")}, "data": {"bbox": f"0,0,{width},{height}", **fields}}
