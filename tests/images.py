"""Images made by the tests, in every form an upload may take."""

from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.hostile import encode, png_header_only  # noqa: F401  (shared with the tests)


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB test pattern with distinct corners."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    return np.stack([x.repeat(height, 0), y.repeat(width, 1), 255 - (x + y) / 2], axis=2).astype(np.uint8)


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes())
