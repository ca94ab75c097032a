"""Uploaded bytes to RGB arrays: format and size checks, decoding, orientation, resizing.

Arrays are ``(H, W, 3)`` ``uint8`` RGB throughout the service.
"""

from __future__ import annotations

import io
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


def decode_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode a JPEG or PNG upload to ``(H, W, 3)`` uint8 RGB, EXIF orientation applied.

    Raises:
        BadImage: empty, truncated or corrupt data (400).
        UnsupportedImage: anything but JPEG or PNG (415).
        TooLarge: over ``max_bytes`` bytes or ``max_pixels`` pixels (413); the pixel count is
            read from the header, before any pixel is decoded.
    """
    if not data:
        raise BadImage("the file is empty", field=field)
    if len(data) > max_bytes:
        raise TooLarge(f"the file has {len(data)} bytes, over the limit of {max_bytes}", field=field)
    kind = next((name for name, magic in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise UnsupportedImage("not a JPEG or PNG image", field=field)
    try:
        image = _READERS[kind](io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise TooLarge(
                f"the image is {width}x{height} pixels, over the limit of {max_pixels} pixels",
                field=field,
            )
        fast = _decode_plain_jpeg(data, image)
        if fast is not None:
            return fast
        image.load()
        return _to_rgb_array(ImageOps.exif_transpose(image))
    except TooLarge:
        raise
    except _DECODE_ERRORS as error:
        raise BadImage(f"the {kind} data is truncated or corrupt ({error})", field=field) from error


def decode_upload(data: bytes, field: str, settings: Settings) -> np.ndarray:
    """:func:`decode_image` under the byte and pixel caps of ``settings``."""
    return decode_image(data, field=field, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def read_rgb(path: Path) -> np.ndarray:
    """A trusted local image file (labelled data, not an upload) as ``(H, W, 3)`` uint8 RGB."""
    return decode_image(path.read_bytes(), field=path.name, max_bytes=1 << 31, max_pixels=1 << 31)


def _decode_plain_jpeg(data: bytes, header: Image.Image) -> np.ndarray | None:
    """OpenCV's decoder (same pixels, about 3x faster than PIL's here) for the common case: a
    complete colour or greyscale JPEG with no EXIF rotation. None for anything else, which PIL
    decodes, since OpenCV would conceal truncation instead of refusing it."""
    if header.format != "JPEG" or header.mode not in ("RGB", "L"):
        return None
    if header.getexif().get(_ORIENTATION, 1) != 1 or not data.rstrip(b"\0")[-2:] == b"\xff\xd9":
        return None
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if decoded is None or decoded.shape[:2] != (header.height, header.width):
        return None
    return decoded


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the high byte rather than clipping at 255.
        wide = np.asarray(image, dtype=np.uint32)
        grey = (wide >> 8).astype(np.uint8) if wide.max(initial=0) > 255 else wide.astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"))


def downscale_to_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Shrink ``(H, W, 3)`` so that its longer side is at most ``max_side``.

    Returns the image (the same array when already small enough) and the ``(x, y)`` scale
    applied: coordinates in the result divided by it are coordinates in the input.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, (1.0, 1.0)
    ratio = max_side / max(height, width)
    new_width, new_height = max(1, round(width * ratio)), max(1, round(height * ratio))
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    return resized, (new_width / width, new_height / height)
