"""Images made for the tests, in forms an upload may take."""

from __future__ import annotations

import numpy as np
from PIL import Image

from reid_devtools.hostile import encode


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB test pattern with distinct corners."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    return np.stack([x.repeat(height, 0), y.repeat(width, 1), 255 - (x + y) / 2], axis=2).astype(np.uint8)


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``rgb`` whose EXIF says to show it turned (``orientation`` 1 to 8)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes())
