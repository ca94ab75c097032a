"""The metric code on hand-made cases with known answers."""

import numpy as np
import pytest

from reid.core.matching import match
from reid.core.pipeline import PairAnalysis, Persons, build_response
from reid.evaluation.calibration import compare_episodes, episode_curves, threshold_for_precision
from reid.evaluation.datasets import GroundTruth, crop_name, load_crop_set
from reid.evaluation.frames import (
    assigned_identities,
    best_identities,
    detection_counts,
    frame_pairs,
    label_pair,
    score_matches,
    score_pair,
    total,
    whole_compares,
)
from reid.evaluation.retrieval import retrieval_metrics
from reid.schemas import ModelTags


def test_retrieval_metrics_on_a_3x3_case():
    # Query 0 finds its person first; query 1 second (AP 1/2); query 2 third (AP 1/3).
    similarity = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, 0.1], [0.9, 0.8, 0.2]])
    ids = np.array(["a", "b", "c"])
    result = retrieval_metrics(similarity, ids, np.array(["1"] * 3), ids, np.array(["2"] * 3))
    assert result["rank1"] == pytest.approx(1 / 3)
    assert result["rank5"] == pytest.approx(1.0)
    assert result["mAP"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert result["queries"] == 3


def test_same_camera_same_identity_is_left_out_and_unmatched_queries_are_not_scored():
    similarity = np.array([[0.99, 0.5, 0.7], [0.1, 0.2, 0.3]])
    gallery_ids, gallery_cams = np.array(["a", "a", "x"]), np.array(["1", "2", "2"])
    result = retrieval_metrics(similarity, np.array(["a", "z"]), np.array(["1", "1"]), gallery_ids, gallery_cams)
    # Entry 0 (same id, same camera) is ignored; "x" at 0.7 outranks the valid "a" at 0.5.
    assert result["queries"] == 1
    assert result["rank1"] == 0.0 and result["mAP"] == pytest.approx(0.5)


def test_frame_pairs_spread_over_the_sequence():
    assert frame_pairs([1, 2]) == [(1, 2)]
    assert frame_pairs(list(range(1, 9))) == [(1, 3), (1, 6), (1, 8), (3, 6), (3, 8), (6, 8)]
    assert (1, 8) in frame_pairs(list(range(1, 9)))


def test_threshold_for_precision_is_the_lowest_from_which_precision_holds():
    thresholds = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert threshold_for_precision(thresholds, np.array([0.5, 0.96, 0.9, 0.97, 1.0]), 0.95) == 0.4
    assert threshold_for_precision(thresholds, np.full(5, 0.99), 0.95) == 0.1
    assert threshold_for_precision(thresholds, np.full(5, 0.5), 0.95) == 0.5


def test_compare_episodes_use_two_cameras_and_one_crop_per_person():
    ids = np.repeat(np.arange(20), 4)
    cams = np.tile(["a", "a", "b", "b"], 20)
    for episode in compare_episodes(ids, cams, count=50, seed=1):
        for side in (episode.first, episode.second):
            assert len(set(cams[side])) == 1 and len(set(ids[side])) == len(side)
        assert cams[episode.first][0] != cams[episode.second][0]
        assert set(ids[episode.first]) & set(ids[episode.second])


def test_episode_curves_on_perfect_and_on_useless_embeddings():
    ids = np.repeat(np.arange(10), 2)
    cams = np.tile(["a", "b"], 10)
    episodes = compare_episodes(ids, cams, count=30)
    thresholds = np.array([0.5])
    perfect = (ids[:, None] == ids[None, :]).astype(float)
    assert episode_curves(perfect, ids, episodes, thresholds)["f1"].tolist() == [1.0]
    useless = episode_curves(np.zeros((20, 20)), ids, episodes, thresholds)
    assert useless["recall"].tolist() == [0.0] and useless["f1"].tolist() == [0.0]


def truth(ids, boxes, visibility=None):
    boxes = np.array(boxes, dtype=float)
    return GroundTruth(np.array(ids), boxes, np.ones(len(ids)) if visibility is None else np.array(visibility))


def test_identities_one_to_one_and_best_overlap():
    labelled = truth([7, 8], [[0, 0, 10, 20], [100, 0, 110, 20]])
    boxes = np.array([[0, 0, 10, 20], [1, 0, 10, 20], [50, 0, 60, 20]])
    assert assigned_identities(boxes, labelled).tolist() == [7, -1, -1]
    assert best_identities(boxes, labelled).tolist() == [7, 7, -1]


def test_scene_pair_with_known_matches():
    # Frame 1: persons 1, 2, 3 (3 barely visible). Frame 2: persons 2, 1, 4.
    truth1 = truth([1, 2, 3], [[0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30]], [1.0, 1.0, 0.2])
    truth2 = truth([2, 1, 4], [[0, 0, 10, 30], [20, 0, 30, 30], [60, 0, 70, 30]])
    boxes1 = np.array([[0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30], [80, 80, 90, 90]])
    boxes2 = np.array([[0, 0, 10, 30], [20, 0, 30, 30], [60, 0, 70, 30], [80, 80, 90, 90]])
    persons = [Persons(b, np.full(4, 0.9, np.float32), np.full(4, "", dtype=object)) for b in (boxes1, boxes2)]
    similarity = np.full((4, 4), 0.1, np.float32)
    similarity[0, 1] = 0.9  # person 1 -> person 1: right
    similarity[1, 2] = 0.8  # person 2 -> person 4: wrong
    similarity[3, 3] = 0.95  # unlabelled -> unlabelled: not scored
    analysis = PairAnalysis(sizes=[(100, 100)] * 2, persons=persons, similarity=similarity, max_persons=50)
    score = score_pair(build_response(analysis, 0.5, ModelTags(detector="d", embedder="e")), truth1, truth2)
    assert (score.matches, score.correct, score.unlabelled) == (2, 1, 1)
    assert score.precision == 0.5
    # Persons 1 and 2 are visible and detected in both frames; person 1 was found.
    assert (score.present, score.detected, score.found, score.found_detected) == (2, 2, 1, 1)
    assert score.recall == 0.5
    assert (score.truth_persons, score.detected_persons) == (5, 5)
    # Six boxes on labelled persons, two on nobody.
    assert (score.detections, score.true_detections) == (8, 6)
    summary = total([score, score])
    assert summary["precision"] == 0.5 and summary["recall"] == 0.5 and summary["f1"] == 0.5
    assert summary["detector_precision"] == 0.75


def test_scoring_the_matches_at_each_threshold_agrees_with_scoring_the_answer():
    # The evaluation's curves label a pair once and score the matches of each threshold.
    rng = np.random.default_rng(3)
    truth1 = truth([1, 2, 3], [[0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30]], [1.0, 1.0, 0.2])
    truth2 = truth([2, 1, 3], [[0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30]])
    boxes = np.array([[0, 0, 10, 30], [20, 0, 30, 30], [40, 0, 50, 30], [80, 80, 90, 90]])
    persons = [Persons(boxes, np.full(4, 0.9, np.float32), np.full(4, "", dtype=object))] * 2
    similarity = rng.uniform(-0.2, 1.0, (4, 4)).astype(np.float32)
    analysis = PairAnalysis(sizes=[(100, 100)] * 2, persons=persons, similarity=similarity, max_persons=50)
    labelled = label_pair(boxes, boxes, truth1, truth2)
    for threshold in np.linspace(0, 1, 21):
        answer = build_response(analysis, threshold, ModelTags(detector="d", embedder="e"))
        assignment = match(similarity, threshold)
        assert score_matches(labelled, assignment.rows, assignment.cols) == score_pair(answer, truth1, truth2)


def test_whole_compares_see_each_frame_once():
    pairs = frame_pairs(list(range(4)))
    assert whole_compares(pairs, set()) == [(0, 1), (2, 3)]
    assert whole_compares(frame_pairs(list(range(3))), set()) == [(0, 1), (0, 2)]
    assert whole_compares(pairs, {0, 1}) == [(2, 3)]
    assert whole_compares(pairs, {0, 1, 2}) == [(0, 3)]
    assert whole_compares(pairs, {0, 1, 2, 3}) == []


def test_a_person_the_detector_missed_is_a_miss_end_to_end():
    both = truth([1, 2], [[0, 0, 10, 30], [20, 0, 30, 30]])
    # Person 2 is not detected in the second frame; person 1 is matched.
    boxes1 = np.array([[0, 0, 10, 30], [20, 0, 30, 30]])
    boxes2 = np.array([[0, 0, 10, 30]])
    persons = [
        Persons(b, np.full(len(b), 0.9, np.float32), np.full(len(b), "", dtype=object)) for b in (boxes1, boxes2)
    ]
    similarity = np.array([[0.9], [0.1]], np.float32)
    analysis = PairAnalysis(sizes=[(100, 100)] * 2, persons=persons, similarity=similarity, max_persons=50)
    score = score_pair(build_response(analysis, 0.5, ModelTags(detector="d", embedder="e")), both, both)
    assert (score.present, score.found, score.detected, score.found_detected) == (2, 1, 1, 1)
    figures = total([score])
    assert figures["recall"] == 0.5 and figures["recall_detected"] == 1.0


def test_detections_on_ignored_people_count_neither_way():
    frame = GroundTruth(np.array([1]), np.array([[0.0, 0, 10, 30]]), np.ones(1), ignored=np.array([[50.0, 0, 60, 30]]))
    boxes = np.array([[0, 0, 10, 30], [50, 0, 60, 30], [80, 0, 90, 30]], float)
    assert detection_counts(boxes, frame) == (2, 1)


def test_retrieval_metrics_agree_with_torchreids_evaluate_rank():
    """The same protocol as torchreid's Market-1501 evaluation (same-camera entries of the
    query's identity left out, queries without a match skipped), on random data."""
    rank = pytest.importorskip("torchreid.reid.metrics.rank")
    rng = np.random.default_rng(3)
    query_ids, gallery_ids = rng.integers(0, 30, 60), rng.integers(0, 30, 400)
    query_cams, gallery_cams = rng.integers(0, 3, 60), rng.integers(0, 3, 400)
    similarity = rng.uniform(-1, 1, (60, 400)) + 0.8 * (query_ids[:, None] == gallery_ids[None, :])
    ours = retrieval_metrics(similarity, query_ids, query_cams, gallery_ids, gallery_cams)
    cmc, mean_ap = rank.evaluate_rank(
        -similarity, query_ids, gallery_ids, query_cams, gallery_cams, max_rank=5, use_cython=False
    )
    assert ours["rank1"] == pytest.approx(cmc[0]) and ours["rank5"] == pytest.approx(cmc[4])
    assert ours["mAP"] == pytest.approx(mean_ap)


def test_crop_names_give_person_and_camera_in_both_layouts(tmp_path):
    assert crop_name("0030_c1_f0056923.jpg") == ("0030", "c1")  # DukeMTMC-reID
    assert crop_name("0001_c1s1_001051_00.jpg") == ("0001", "c1")  # Market-1501: camera 1, sequence 1
    assert crop_name("-1_c3s2_000001_00.jpg") == ("-1", "c3")  # Market-1501's distractors
    assert crop_name("c1_1.jpg") is None and crop_name("02_2.png") is None  # per-person folders
    for name in ("query/0001_c1s1_001051_00.jpg", "gallery/0001_c2s1_000301_00.jpg", "gallery/004/01_2.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    crops = load_crop_set(tmp_path)
    assert [(c.identity, c.camera) for c in crops.query] == [("0001", "c1")]
    assert [(c.identity, c.camera) for c in crops.gallery] == [("0001", "c2"), ("004", "01")]
