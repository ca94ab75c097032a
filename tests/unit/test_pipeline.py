"""The compare pipeline on hand-made detections and embeddings: tiles, partial views, indices."""

import asyncio

import numpy as np
import pytest

from reid.core.pipeline import PersonRules, ReIDPipeline
from reid.core.tiles import View, detection_views, merge_views, tile_spans
from reid.schemas import ModelTags

# From a held-out 1920x1080 frame (issue 9): a man in front, a different man behind him whose
# box lies wholly inside the front man's, and a head.
FRONT = [212, 280, 658, 1066]
BEHIND = [457, 340, 656, 960]
HEAD = [440, 278, 511, 353]
# The front man's upper body, detected again on its own: a partial view of him.
FRONT_UPPER = [215, 282, 655, 700]


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def pipeline_over(boxes: list[list[int]], embeddings: dict[tuple[int, ...], np.ndarray], **rules) -> ReIDPipeline:
    """A pipeline whose detector finds ``boxes`` (score 0.9) in every whole image and whose
    embedder gives each crop the embedding of the box it was cut from (told apart by size)."""
    by_shape = {(box[3] - box[1], box[2] - box[0]): embeddings[tuple(box)] for box in boxes}

    async def detect(views: list[np.ndarray]) -> list[np.ndarray]:
        rows = np.array([[*box, 0.9] for box in boxes], np.float32)
        return [rows * [*(view.shape[1] / 1920, view.shape[0] / 1080) * 2, 1] for view in views]

    async def embed(crops: list[np.ndarray]) -> np.ndarray:
        return np.stack([by_shape[crop.shape[:2]] for crop in crops])

    return ReIDPipeline(
        detect=detect,
        embed=embed,
        rules=PersonRules(detector_input=(1920, 1080), **rules),
        threshold=0.5,
        models=ModelTags(detector="d", embedder="e"),
    )


def persons_of(pipeline: ReIDPipeline) -> list[list[int]]:
    image = np.zeros((1080, 1920, 3), np.uint8)
    return asyncio.run(pipeline.persons([image]))[0].boxes.tolist()


def test_a_different_person_inside_anothers_box_is_kept():
    embeddings = {tuple(FRONT): unit(1, 0, 0), tuple(BEHIND): unit(0.2, 1, 0), tuple(HEAD): unit(0, 0.3, 1)}
    pipeline = pipeline_over([FRONT, BEHIND, HEAD], embeddings, containment=0.8, duplicate_similarity=0.5)
    assert sorted(persons_of(pipeline)) == sorted([FRONT, BEHIND, HEAD])


def test_a_partial_view_of_the_same_person_is_dropped():
    embeddings = {
        tuple(FRONT): unit(1, 0, 0),
        tuple(FRONT_UPPER): unit(1, 0.3, 0),  # cosine 0.96 with FRONT
        tuple(BEHIND): unit(0.2, 1, 0),
    }
    pipeline = pipeline_over([FRONT, FRONT_UPPER, BEHIND], embeddings, containment=0.8, duplicate_similarity=0.5)
    assert sorted(persons_of(pipeline)) == sorted([FRONT, BEHIND])
    off = pipeline_over([FRONT, FRONT_UPPER, BEHIND], embeddings, containment=0.0, duplicate_similarity=0.5)
    assert len(persons_of(off)) == 3


def test_compare_indices_survive_a_dropped_partial_view():
    embeddings = {tuple(FRONT): unit(1, 0, 0), tuple(FRONT_UPPER): unit(1, 0.1, 0), tuple(BEHIND): unit(0, 1, 0)}
    pipeline = pipeline_over([FRONT, FRONT_UPPER, BEHIND], embeddings, containment=0.8, duplicate_similarity=0.5)
    image = np.zeros((1080, 1920, 3), np.uint8)
    answer = asyncio.run(pipeline.compare(image, image))
    assert answer.image1_person_count == answer.image2_person_count == 2
    assert [(m.image1_index, m.image2_index) for m in answer.matches] == [(0, 0), (1, 1)]
    assert [p.bbox for p in answer.image1_persons] == [FRONT, BEHIND]


def test_tiles_cover_the_image_with_overlap():
    assert tile_spans(1080, 1067, 0.2) == [(0, 1080)]
    spans = tile_spans(1920, 1067, 0.2)
    assert spans == [(0, 1067), (853, 1920)]
    assert spans[0][1] - spans[1][0] >= 0.2 * 1067


@pytest.mark.parametrize(
    "size, input_size, zoom, count",
    [
        ((1080, 1920), (640, 640), 0.0, 1),  # tiling off
        ((480, 640), (640, 640), 1.8, 1),  # small enough to be seen whole
        ((1080, 1920), (640, 640), 1.8, 3),  # whole + 2 tiles side by side
        ((1080, 1920), (864, 480), 1.8, 5),  # whole + 2x2 tiles of the detector's shape
    ],
)
def test_detection_views(size, input_size, zoom, count):
    image = np.zeros((*size, 3), np.uint8)
    views = detection_views(image, input_size, zoom)
    assert len(views) == count
    whole = views[0]
    assert whole.origin == (0, 0) and not any(whole.inner_edges)
    for view in views:
        assert view.pixels.shape[1] <= input_size[0] and view.pixels.shape[0] <= input_size[1]
    for tile in views[1:]:
        assert tile.scale > whole.scale and any(tile.inner_edges)


def test_merged_views_map_boxes_back_drop_cut_ones_and_merge_duplicates():
    whole = View(np.zeros((540, 960, 3), np.uint8), (0, 0), 0.5)
    tile = View(np.zeros((540, 540, 3), np.uint8), (800, 0), 0.5, (True, False, False, False))
    in_whole = np.array([[500, 100, 550, 300, 0.6]], np.float32)  # a person at x 1000..1100
    in_tile = np.array(
        [
            [100, 100, 150, 300, 0.8],  # the same person seen by the tile
            [0, 100, 40, 300, 0.9],  # cut by the tile's left edge
            [300, 50, 340, 200, 0.7],  # someone only the tile saw, at x 1400..1480
        ],
        np.float32,
    )
    merged = merge_views([in_whole, in_tile], [whole, tile])
    assert merged[:, :4].tolist() == [[1000, 200, 1100, 600], [1400, 100, 1480, 400]]
    assert merged[:, 4].tolist() == pytest.approx([0.8, 0.7])
