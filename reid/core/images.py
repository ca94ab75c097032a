"""Uploaded bytes to RGB arrays: format and size checks, decoding, orientation, resizing.

Arrays are ``(H, W, 3)`` ``uint8`` RGB throughout the service.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin

from reid.errors import BadImage, TooLarge, UnsupportedImage

if TYPE_CHECKING:
    from reid.config import Settings

_MAGIC = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n"}
# The format's own reader, not Image.open: ultralytics replaces Image.open process-wide with a
# wrapper that, on a corrupt file, tries to import an optional HEIF plugin and fails otherwise.
_READERS = {"JPEG": JpegImagePlugin.JpegImageFile, "PNG": PngImagePlugin.PngImageFile}
# Transparent pixels are shown on the grey YOLO pads its letterbox with.
_BACKGROUND = (114, 114, 114)
_ORIENTATION = 0x0112  # EXIF tag
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)

# Decode work is bounded before decoding. Progressive encoders write about ten scans and a
# JPEG a few dozen segments; each scan is a pass over the whole image, and each segment a step
# of PIL's parser (in Python, holding the GIL). PNG encoders write IDAT chunks of 8 to 64 kB.
MAX_JPEG_SCANS = 64
MAX_JPEG_SEGMENTS = 1_000
# Bytes between segments (fill 0xFF bytes, or junk a decoder skips): PIL steps over them one at a time.
MAX_JPEG_GAP = 1_024
MAX_PNG_CHUNKS = 100_000
# Bytes per pixel PIL keeps a decoded image in, by mode (RGB is stored as 32-bit pixels).
_PIL_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_MARKER = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")  # a JPEG marker: not stuffing, fill or restart
_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xff])")  # fill bytes, then the marker code


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header says, read without decoding a pixel."""

    kind: str  # "JPEG" or "PNG"
    width: int
    height: int
    mode: str  # PIL's mode of the decoded image
    progressive: bool = False
    rotated: bool = False  # an EXIF orientation that needs the pixels turned

    @property
    def rgb_bytes(self) -> int:
        """Bytes of the ``(H, W, 3)`` uint8 array it decodes to."""
        return self.width * self.height * 3

    @property
    def decode_bytes(self) -> int:
        """Estimated peak memory of decoding it, in bytes (measured with scripts/attack.py):
        the result and a progressive JPEG's whole-image coefficients; through OpenCV the BGR
        image it converts from; through PIL its own image, the bytes it copies out twice, and
        copies made to turn or convert it."""
        coefficients = 6 if self.progressive else 1
        if self.plain_jpeg:
            return self.width * self.height * (3 + 3 + coefficients)
        internal = _PIL_BYTES_PER_PIXEL.get(self.mode, 4)
        per_pixel = internal + 10 + coefficients + (0 if self.mode == "RGB" else 4) + (internal if self.rotated else 0)
        return self.width * self.height * per_pixel

    @property
    def plain_jpeg(self) -> bool:
        """Decoded by OpenCV straight into the result (see :func:`_decode_plain_jpeg`)."""
        return self.kind == "JPEG" and self.mode in ("RGB", "L") and not self.rotated


def read_header(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> ImageHeader:
    """Check an upload's format, size and decode work from its bytes and header alone.

    Raises:
        BadImage: empty, truncated or corrupt data (400).
        UnsupportedImage: anything but JPEG or PNG (415).
        TooLarge: over ``max_bytes`` bytes or ``max_pixels`` pixels, or more scans, segments or
            chunks than a real image has (413).
    """
    if not data:
        raise BadImage("the file is empty", field=field)
    if len(data) > max_bytes:
        raise TooLarge(f"the file has {len(data)} bytes, over the limit of {max_bytes}", field=field)
    kind = next((name for name, magic in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise UnsupportedImage("not a JPEG or PNG image", field=field)
    if kind == "JPEG":
        _check_jpeg_structure(data, field)
    else:
        png_exif = _check_png_structure(data, field)
    try:
        image = _READERS[kind](io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise TooLarge(f"the image is {width}x{height} pixels, over the limit of {max_pixels} pixels", field=field)
        return ImageHeader(
            kind=kind,
            width=width,
            height=height,
            mode=image.mode,
            progressive=bool(image.info.get("progressive")),
            # A PNG's EXIF may follow its pixels: reading it would decode them. Count it as turning.
            rotated=png_exif if kind == "PNG" else image.getexif().get(_ORIENTATION, 1) != 1,
        )
    except TooLarge:
        raise
    except _DECODE_ERRORS as error:
        raise BadImage(f"the {kind} data is truncated or corrupt ({error})", field=field) from error


def decode_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode a JPEG or PNG upload to ``(H, W, 3)`` uint8 RGB, EXIF orientation applied, after
    the checks of :func:`read_header` (same errors)."""
    return decode(data, read_header(data, field=field, max_bytes=max_bytes, max_pixels=max_pixels), field=field)


def decode(data: bytes, header: ImageHeader, *, field: str) -> np.ndarray:
    """Decode upload bytes whose header :func:`read_header` has checked (BadImage if corrupt)."""
    try:
        image = _READERS[header.kind](io.BytesIO(data))
        fast = _decode_plain_jpeg(data, image) if header.plain_jpeg else None
        if fast is not None:
            return fast
        image.load()
        return _to_rgb_array(ImageOps.exif_transpose(image))
    except _DECODE_ERRORS as error:
        raise BadImage(f"the {header.kind} data is truncated or corrupt ({error})", field=field) from error


def decode_upload(data: bytes, field: str, settings: Settings) -> np.ndarray:
    """:func:`decode_image` under the byte and pixel caps of ``settings``."""
    return decode(data, read_upload_header(data, field, settings), field=field)


def read_upload_header(data: bytes, field: str, settings: Settings) -> ImageHeader:
    """:func:`read_header` under the byte and pixel caps of ``settings``."""
    return read_header(data, field=field, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def _check_jpeg_structure(data: bytes, field: str) -> None:
    """Walk the JPEG's segments (jumping over entropy-coded data) and refuse more scans,
    segments or bytes between them than :data:`MAX_JPEG_SCANS`, :data:`MAX_JPEG_SEGMENTS` and
    :data:`MAX_JPEG_GAP` (then it is corrupt). Other malformations are left to the decoder."""
    position, scans, segments = 2, 0, 0
    while position < len(data):
        found = _NEXT_MARKER.search(data, position)
        if found is None:
            return
        if found.start(1) - position > MAX_JPEG_GAP:
            raise BadImage(f"the JPEG is corrupt: over {MAX_JPEG_GAP} bytes between segments", field=field)
        marker, position = found.group(1)[0], found.end()
        if marker == 0xD9:  # end of image
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise TooLarge(f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments, too much work to decode", field=field)
        position += int.from_bytes(data[position : position + 2], "big")
        if marker == 0xDA:  # start of scan, then entropy-coded data up to the next marker
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise TooLarge(f"the JPEG has more than {MAX_JPEG_SCANS} scans, too much work to decode", field=field)
            following = _MARKER.search(data, position)
            position = following.start() if following else len(data)


def _check_png_structure(data: bytes, field: str) -> bool:
    """Count the PNG's chunks up to IEND and refuse more than :data:`MAX_PNG_CHUNKS`; whether it
    has an EXIF chunk."""
    position, chunks, exif = 8, 0, False
    while position + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise TooLarge(f"the PNG has more than {MAX_PNG_CHUNKS} chunks, too much work to decode", field=field)
        length, kind = int.from_bytes(data[position : position + 4], "big"), data[position + 4 : position + 8]
        exif |= kind == b"eXIf"
        position += 12 + length
        if kind == b"IEND":
            break
    return exif


def read_rgb(path: Path) -> np.ndarray:
    """A trusted local image file (labelled data, not an upload) as ``(H, W, 3)`` uint8 RGB."""
    return decode_image(path.read_bytes(), field=path.name, max_bytes=1 << 31, max_pixels=1 << 31)


def _decode_plain_jpeg(data: bytes, header: Image.Image) -> np.ndarray | None:
    """OpenCV's decoder (same pixels, about 3x faster than PIL's here) for the common case: a
    complete colour or greyscale JPEG with no EXIF rotation. None when it is not complete, which
    PIL decodes, since OpenCV would conceal truncation instead of refusing it."""
    if not data.rstrip(b"\0")[-2:] == b"\xff\xd9":
        return None
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if decoded is None or decoded.shape[:2] != (header.height, header.width):
        return None
    return decoded


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """The decoded image as ``(H, W, 3)`` uint8 RGB, with as few whole-image copies as it takes."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the high byte rather than clipping at 255.
        wide = np.asarray(image, dtype=np.uint32)
        grey = (wide >> 8).astype(np.uint8) if wide.max(initial=0) > 255 else wide.astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _on_background(np.asarray(image if image.mode == "RGBA" else image.convert("RGBA")))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _on_background(rgba: np.ndarray, rows: int = 256) -> np.ndarray:
    """``(H, W, 4)`` uint8 composited over :data:`_BACKGROUND`, a band of rows at a time."""
    out = np.empty((*rgba.shape[:2], 3), np.uint8)
    background = np.array(_BACKGROUND, np.uint16)
    for top in range(0, len(rgba), rows):
        band = rgba[top : top + rows].astype(np.uint16)
        alpha = band[..., 3:]
        out[top : top + rows] = (band[..., :3] * alpha + background * (255 - alpha) + 127) // 255
    return out
