"""A picture of a compare answer: both images side by side, matched pairs in their own colours
joined by a line with the similarity, unmatched persons in grey, indices as in the JSON.

Drawn with OpenCV's built-in Hershey font (ultralytics' plotting would download a font).
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from reid.errors import BadImage
from reid.schemas import CompareResponse

GREY = (150, 150, 150)
# Each image is drawn in a panel that fits this box, its aspect kept: the picture is at most
# 1080 pixels tall and two panels wide whatever the uploads' shapes.
PANEL_WIDTH, PANEL_HEIGHT = 1920, 1080
MIN_PANEL_SIDE = 2


def pair_colours(count: int) -> list[tuple[int, int, int]]:
    """``count`` well-separated saturated RGB colours (golden-angle hues)."""
    hues = [(i * 0.618033988749895) % 1.0 for i in range(count)]
    rgb = [colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hues]
    return [(int(255 * r), int(255 * g), int(255 * b)) for r, g, b in rgb]


def panel_scale(image: np.ndarray, height: int, field: str) -> float:
    """The scale that brings ``image`` to ``height`` pixels, or less where the panel's width
    demands; BadImage when it would be too thin to draw."""
    image_height, image_width = image.shape[:2]
    scale = min(height / image_height, PANEL_WIDTH / image_width)
    if min(image_width, image_height) * scale < MIN_PANEL_SIDE:
        raise BadImage(f"a {image_width}x{image_height} image is too thin to draw; use /compare", field=field)
    return scale


def render(image1: np.ndarray, image2: np.ndarray, answer: CompareResponse) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB picture of ``answer`` for the two uploaded images, side by side at
    one height where their shapes allow, at most ``PANEL_HEIGHT`` tall and two ``PANEL_WIDTH``
    panels (plus a gap) wide."""
    target = min(PANEL_HEIGHT, max(image1.shape[0], image2.shape[0]))
    scales = [panel_scale(image, target, field) for image, field in ((image1, "image1"), (image2, "image2"))]
    panels = [
        cv2.resize(
            image,
            (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
        )
        for image, s in zip((image1, image2), scales)
    ]
    height = max(panel.shape[0] for panel in panels)
    gap = 16
    canvas = np.full((height, panels[0].shape[1] + gap + panels[1].shape[1], 3), 255, np.uint8)
    canvas[: panels[0].shape[0], : panels[0].shape[1]] = panels[0]
    canvas[: panels[1].shape[0], panels[0].shape[1] + gap :] = panels[1]
    offsets = [0, panels[0].shape[1] + gap]
    thickness = max(2, height // 360)

    def place(box: list[int], side: int) -> tuple[int, int, int, int]:
        s = scales[side]
        x1, y1, x2, y2 = (round(v * s) for v in box)
        return x1 + offsets[side], y1, x2 + offsets[side], y2

    colour_of: dict[tuple[int, int], tuple[int, int, int]] = {}
    for match, colour in zip(answer.matches, pair_colours(len(answer.matches))):
        colour_of[0, match.image1_index] = colour
        colour_of[1, match.image2_index] = colour
    for side, persons in enumerate((answer.image1_persons, answer.image2_persons)):
        for person in persons:
            colour = colour_of.get((side, person.index), GREY)
            x1, y1, x2, y2 = place(person.bbox, side)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
            _label(canvas, str(person.index), (x1, y1), colour, thickness)
    for match in answer.matches:
        colour = colour_of[0, match.image1_index]
        a = place(match.bbox_image1, 0)
        b = place(match.bbox_image2, 1)
        start, end = ((a[0] + a[2]) // 2, (a[1] + a[3]) // 2), ((b[0] + b[2]) // 2, (b[1] + b[3]) // 2)
        cv2.line(canvas, start, end, colour, max(1, thickness - 1), cv2.LINE_AA)
        middle = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
        _label(canvas, f"{match.similarity:.2f}", middle, colour, thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], colour, thickness: int) -> None:
    scale = 0.5 + thickness * 0.15
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(corner[0], 0), canvas.shape[1] - width - 2)
    y = min(max(corner[1], height + base + 2), canvas.shape[0] - 1)
    cv2.rectangle(canvas, (x, y - height - base - 2), (x + width + 2, y), colour, -1)
    cv2.putText(canvas, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an ``(H, W, 3)`` uint8 RGB image."""
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
