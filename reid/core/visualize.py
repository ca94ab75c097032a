"""Pictures of answers. A compare: both images side by side, matched pairs in their own colours
joined by a line with the similarity, unmatched persons in grey, indices as in the JSON. A group:
the images in a grid, each identity in its own colour with its number on each of its boxes.

Drawn with OpenCV's built-in Hershey font (ultralytics' plotting would download a font).
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from reid.errors import BadImage
from reid.schemas import CompareResponse, GroupResponse

GREY = (150, 150, 150)
# Each image is drawn in a panel that fits this box, its aspect kept: the picture is at most
# 1080 pixels tall and two panels wide whatever the uploads' shapes.
PANEL_WIDTH, PANEL_HEIGHT = 1920, 1080
MIN_PANEL_SIDE = 2
# A group's grid: cells of this size, at most this many columns (16 images: 3840 x 2160).
CELL_WIDTH, CELL_HEIGHT = 960, 540
GRID_COLUMNS = 4
GAP = 16


def pair_colours(count: int) -> list[tuple[int, int, int]]:
    """``count`` well-separated saturated RGB colours (golden-angle hues)."""
    hues = [(i * 0.618033988749895) % 1.0 for i in range(count)]
    rgb = [colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hues]
    return [(int(255 * r), int(255 * g), int(255 * b)) for r, g, b in rgb]


def panel_scale(image: np.ndarray, height: int, field: str, width: int = PANEL_WIDTH) -> float:
    """The scale that brings ``image`` to ``height`` pixels, or less where the panel's ``width``
    demands; BadImage when it would be too thin to draw."""
    image_height, image_width = image.shape[:2]
    scale = min(height / image_height, width / image_width)
    if min(image_width, image_height) * scale < MIN_PANEL_SIDE:
        raise BadImage(f"a {image_width}x{image_height} image is too thin to draw; ask for the JSON", field=field)
    return scale


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _scaled_box(box: list[int], scale: float, x: int, y: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    return x1 + x, y1 + y, x2 + x, y2 + y


def render(image1: np.ndarray, image2: np.ndarray, answer: CompareResponse) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB picture of ``answer`` for the two uploaded images, side by side at
    one height where their shapes allow, at most ``PANEL_HEIGHT`` tall and two ``PANEL_WIDTH``
    panels (plus a gap) wide."""
    target = min(PANEL_HEIGHT, max(image1.shape[0], image2.shape[0]))
    scales = [panel_scale(image, target, field) for image, field in ((image1, "image1"), (image2, "image2"))]
    panels = [_scaled(image, s) for image, s in zip((image1, image2), scales)]
    height = max(panel.shape[0] for panel in panels)
    canvas = np.full((height, panels[0].shape[1] + GAP + panels[1].shape[1], 3), 255, np.uint8)
    canvas[: panels[0].shape[0], : panels[0].shape[1]] = panels[0]
    canvas[: panels[1].shape[0], panels[0].shape[1] + GAP :] = panels[1]
    offsets = [0, panels[0].shape[1] + GAP]
    thickness = max(2, height // 360)

    def place(box: list[int], side: int) -> tuple[int, int, int, int]:
        return _scaled_box(box, scales[side], offsets[side], 0)

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


def render_group(images: list[np.ndarray], answer: GroupResponse) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB grid of the group's images in upload order, at most
    ``GRID_COLUMNS`` cells of ``CELL_WIDTH`` x ``CELL_HEIGHT`` wide; each identity's boxes in
    its own colour labelled with its number, persons not matchable in grey."""
    columns = min(GRID_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (CELL_HEIGHT + GAP) - GAP, columns * (CELL_WIDTH + GAP) - GAP, 3), 255, np.uint8)
    colours = pair_colours(len(answer.identities))
    thickness = 2
    for index, (image, drawn) in enumerate(zip(images, answer.images)):
        scale = panel_scale(image, CELL_HEIGHT, f"images[{index}]", CELL_WIDTH)
        panel = _scaled(image, scale)
        x, y = (index % columns) * (CELL_WIDTH + GAP), (index // columns) * (CELL_HEIGHT + GAP)
        canvas[y : y + panel.shape[0], x : x + panel.shape[1]] = panel
        for person in drawn.persons:
            colour = GREY if person.identity is None else colours[person.identity]
            x1, y1, x2, y2 = _scaled_box(person.bbox, scale, x, y)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
            if person.identity is not None:
                _label(canvas, str(person.identity), (x1, y1), colour, thickness)
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
