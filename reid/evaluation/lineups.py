"""Synthetic line-ups: crowded frontal groups composed from real labelled people.

Persons cut from labelled frames (tight boxes, nearly unoccluded, tall) are pasted side by
side onto a blurred background, overlapping their neighbours and often cut off at the image's
bottom edge, as in group photos, stages and queues. Image2 shows the same identities cut from
another frame of their sequence (another moment: another pose), in another order, with a
stranger or two. Boxes, identities and visibility are known exactly. What this does not test:
real group poses (arms around shoulders, heads turned), real lighting, real occlusion edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid.core.images import read_rgb
from reid.evaluation.datasets import MotSequence, mot_sequences

CANVAS = (960, 540)  # (width, height) of a line-up image


@dataclass(frozen=True)
class Cutout:
    """One labelled person seen in two frames: ``first`` and ``second`` are ``(h, w, 3)`` uint8 RGB."""

    identity: int
    first: np.ndarray
    second: np.ndarray


def cutouts(sequences: list[MotSequence], min_height: int = 120, min_visibility: float = 0.9) -> list[Cutout]:
    """Every labelled person seen whole (``min_visibility``, inside the frame, standing) and at least
    ``min_height`` pixels tall, in the first and the last frame of its sequence where that holds;
    identities made unique across sequences."""
    found = []
    for k, sequence in enumerate(sequences):
        seen: dict[int, list[tuple[int, np.ndarray]]] = {}
        images = {number: read_rgb(path) for number, path in sequence.frames.items()}
        width, height = images[sequence.frame_numbers()[0]].shape[1::-1]
        for number in sequence.frame_numbers():
            truth = sequence.truth[number]
            sides = truth.boxes[:, 2:] - truth.boxes[:, :2]
            whole = (
                (sides[:, 1] >= min_height)
                & (truth.visibility >= min_visibility)
                & (sides[:, 1] >= 2 * sides[:, 0])  # standing, not cut by the frame's side
                & (truth.boxes[:, :2] >= 2).all(axis=1)
                & (truth.boxes[:, 2] <= width - 2)
                & (truth.boxes[:, 3] <= height - 2)
            )
            for identity, box in zip(truth.ids[whole], truth.boxes[whole]):
                seen.setdefault(int(identity), []).append((number, box))
        for identity, views in sorted(seen.items()):
            if len(views) < 2:
                continue
            pair = []
            for number, box in (views[0], views[-1]):
                image = images[number]
                x1, y1, x2, y2 = np.rint(box).astype(int).clip(0, [image.shape[1], image.shape[0]] * 2)
                pair.append(image[y1:y2, x1:x2].copy())
            found.append(Cutout(identity=(k + 1) * 100_000 + identity, first=pair[0], second=pair[1]))
    return found


def compose(
    people: list[np.ndarray], background: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``people`` left to right onto ``background`` (``CANVAS``-sized RGB), neighbours
    overlapping by 10 to 45% of a width, about half of them a step nearer (in front, larger, lower).

    Returns the image and ``(N, 5)`` rows per person in the given order: xyxy clipped to the
    image and the visible share of that box (0..1).
    """
    width, height = CANVAS
    canvas = background.copy()
    tall = rng.uniform(0.6, 1.05) * height
    front = rng.random(len(people)) < 0.5
    placed = []
    x = rng.uniform(0, 0.08) * width
    for person, near in zip(people, front):
        h = tall * (1.1 if near else 1.0)
        w = person.shape[1] * h / person.shape[0]
        y2 = rng.uniform(0.9, 1.25) * height + (0.04 * height if near else 0.0)
        placed.append(np.array([x, y2 - h, x + w, y2]))
        x += w * rng.uniform(0.55, 0.9)
    boxes = np.array(placed)
    span = boxes[:, 2].max() - boxes[:, 0].min()
    if span > 0.96 * width:  # shrink the whole group about its feet until it fits
        boxes *= 0.96 * width / span
        boxes[:, [1, 3]] += height * rng.uniform(0.95, 1.15) - boxes[:, 3].max()
    boxes[:, [0, 2]] += (width - boxes[:, 2].max() - boxes[:, 0].min()) / 2  # centred
    owner = np.full((height, width), -1, dtype=np.int64)
    for index in sorted(range(len(people)), key=lambda i: front[i]):  # far first, near last
        x1, y1, x2, y2 = np.rint(boxes[index]).astype(int)
        size = (max(1, x2 - x1), max(1, y2 - y1))
        scaled = cv2.resize(people[index], size, interpolation=cv2.INTER_LINEAR)
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        canvas[cy1:cy2, cx1:cx2] = scaled[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        owner[cy1:cy2, cx1:cx2] = index
    rows = []
    for index, box in enumerate(boxes):
        x1, y1, x2, y2 = np.rint(box).astype(int)
        whole = max(1, (x2 - x1) * (y2 - y1))
        rows.append([*np.clip(box, 0, [width, height, width, height]), float((owner == index).sum()) / whole])
    return canvas, np.array(rows)


def blurred_background(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A ``CANVAS``-sized patch of a frame, blurred until no person in it can be made out."""
    width, height = CANVAS
    scale = max(width / frame.shape[1], height / frame.shape[0])
    frame = cv2.resize(frame, (int(np.ceil(frame.shape[1] * scale)), int(np.ceil(frame.shape[0] * scale))))
    x0 = int(rng.integers(0, frame.shape[1] - width + 1))
    y0 = int(rng.integers(0, frame.shape[0] - height + 1))
    return cv2.GaussianBlur(frame[y0 : y0 + height, x0 : x0 + width], (0, 0), 30)


def write_lineups(source: Path, target: Path, count: int = 20, seed: int = 0) -> list[MotSequence]:
    """``count`` two-frame line-up sequences in ``target`` from the people of the MOT-style
    sequences below ``source``: frame 1 shows 4 to 7 people, frame 2 the same people (their
    other frame) in another order plus 0 to 2 strangers. The sequences read back."""
    rng = np.random.default_rng(seed)
    sequences = mot_sequences(source)
    people = cutouts(sequences)
    frames = [sequence.frames[sequence.frame_numbers()[0]] for sequence in sequences]
    for number in range(count):
        chosen = rng.choice(len(people), size=min(len(people), int(rng.integers(4, 8)) + 2), replace=False)
        shared, strangers = list(chosen[:-2]), list(chosen[-2:][: int(rng.integers(0, 3))])
        second = list(rng.permutation(shared + strangers))
        folder = target / f"lineup-{number:03d}"
        (folder / "img1").mkdir(parents=True, exist_ok=True)
        (folder / "gt").mkdir(exist_ok=True)
        lines = []
        for frame, order in enumerate((shared, second), start=1):
            background = blurred_background(read_rgb(frames[int(rng.integers(len(frames)))]), rng)
            image, rows = compose([(people[i].first, people[i].second)[frame - 1] for i in order], background, rng)
            cv2.imwrite(str(folder / "img1" / f"{frame:06d}.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            for i, (x1, y1, x2, y2, seen) in zip(order, rows):
                lines.append(
                    f"{frame},{people[i].identity},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},1,1,{seen:.3f}"
                )
        (folder / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    return mot_sequences(target)
