"""The gallery's parts that need no store: exact vector search by best view and the form fields."""

import numpy as np
import pytest

from reid.gallery.vectors import VectorIndex
from reid.serving.fields import parse_bbox, parse_label, parse_metadata, parse_top_k


def test_search_is_best_first_above_the_threshold_and_forgets_removed_keys():
    index = VectorIndex()
    index.add("a", "a", np.array([1.0, 0.0]))
    index.add("b", "b", np.array([0.8, 0.6]))
    index.add("c", "c", np.array([0.0, 1.0]))
    [hits] = index.search(np.array([[2.0, 0.0]]), top_k=5, threshold=0.5)
    assert [h.key for h in hits] == ["a", "b"] and hits[0].similarity == pytest.approx(1.0)
    index.remove("a")
    index.remove("a")
    [hits] = index.search(np.array([[1.0, 0.0]]), top_k=1, threshold=-1.0)
    assert [h.key for h in hits] == ["b"] and len(index) == 2


def test_slots_are_reused_and_the_buffer_grows():
    index = VectorIndex()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 8)).astype(np.float32)
    for i, v in enumerate(vectors):
        index.add(str(i), str(i), v)
    for i in range(0, 3000, 2):
        index.remove(str(i))
    index.add("again", "again", vectors[0])
    assert len(index) == 1501
    found = index.search(vectors[[0, 1]], top_k=1, threshold=0.99)
    assert [h.key for h in found[0]] == ["again"] and [h.key for h in found[1]] == ["1"]
    index.add("1", "1", vectors[2])  # replaced, not added twice
    assert len(index) == 1501 and index.search(vectors[[2]], 1, 0.99)[0][0].key == "1"


def test_an_empty_index_and_no_queries_give_nothing():
    assert VectorIndex().search(np.ones((2, 4)), 5, 0.0) == [[], []]
    index = VectorIndex()
    index.add("a", "a", np.ones(4))
    assert index.search(np.zeros((0, 4)), 5, 0.0) == []
    with pytest.raises(ValueError):
        index.add("b", "b", np.ones(5))


@pytest.mark.parametrize(
    ("text", "box"),
    [
        ("1,2,30,40", [1, 2, 30, 40]),
        (" 1, 2 ,30,40", [1, 2, 30, 40]),
        ("[1, 2, 30, 40]", [1, 2, 30, 40]),
        ('"1,2,30,40"', [1, 2, 30, 40]),
        ("null", None),
        ("", None),
    ],
)
def test_bbox_as_text_or_json(text, box):
    assert parse_bbox(text) == box


@pytest.mark.parametrize(
    "text", ["1,2,3", "1,2,3,4,5", "3,2,1,4", "1,4,3,2", "-1,0,3,4", "a,b,c,d", "[1.5,2,3,4]", "{}"]
)
def test_bad_bboxes_are_refused(text):
    with pytest.raises(ValueError):
        parse_bbox(text)


def test_labels_keep_their_text_numbers_included():
    assert parse_label("alice") == "alice"
    assert parse_label('"alice"') == "alice"  # BentoML's client sends JSON strings
    assert parse_label("007") == "007" and parse_label("1e3") == "1e3" and parse_label("true") == "true"
    assert parse_label("null") is None
    for bad in ("x" * 201, "a\nb", "\x00"):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_metadata_is_a_json_object_of_at_most_4_kb():
    assert parse_metadata('{"camera": 2, "zone": "hall"}') == {"camera": 2, "zone": "hall"}
    assert parse_metadata('"{\\"a\\": 1}"') == {"a": 1}  # an object sent as a JSON string
    assert parse_metadata("null") == {} and parse_metadata("") == {}
    for bad in ("[1]", "3", "not json", '{"a": "' + "x" * 4100 + '"}'):
        with pytest.raises(ValueError):
            parse_metadata(bad)


def test_top_k_is_an_integer_from_1_to_100():
    assert parse_top_k("5") == 5 and parse_top_k("null") is None and parse_top_k("100") == 100
    for bad in ("0", "101", "2.5", "true", "x", "-1"):
        with pytest.raises(ValueError):
            parse_top_k(bad)


def test_an_index_built_in_one_go_searches_and_grows_like_one_built_by_adding():
    vectors = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    built = VectorIndex.of([str(i) for i in range(50)], [str(i) for i in range(50)], vectors * 3)
    assert len(built) == 50 and [h.key for h in built.search(vectors[[7]], 1, 0.99)[0]] == ["7"]
    built.add("new", "new", vectors[0] + 1)
    built.remove("3")
    assert len(built) == 50 and built.search(vectors[[3]], 1, 0.99) == [[]]
    assert VectorIndex.of([], [], np.zeros((0, 0))).search(vectors[:1], 3, 0.0) == [[]]


def test_a_person_scores_by_its_best_view_and_the_hit_names_it():
    rng = np.random.default_rng(2)
    persons, views, size = 300, 6, 16
    centres = rng.normal(size=(persons, size))
    embeddings = np.repeat(centres, views, axis=0) + 0.6 * rng.normal(size=(persons * views, size))
    keys = [f"v{i}" for i in range(persons * views)]
    owners = [f"p{i // views}" for i in range(persons * views)]
    index = VectorIndex.of(keys, owners, embeddings)
    queries = centres[:20] + 0.6 * rng.normal(size=(20, size))
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = unit @ (queries / np.linalg.norm(queries, axis=1, keepdims=True)).T
    for top_k in (1, 5, 40):
        found = index.search(queries, top_k, threshold=0.1)
        for q, hits in enumerate(found):
            best = scores[:, q].reshape(persons, views).max(axis=1)
            expected = [f"p{i}" for i in np.argsort(-best, kind="stable") if best[i] >= 0.1][:top_k]
            assert [hit.owner for hit in hits] == expected
            assert all(owners[keys.index(hit.key)] == hit.owner for hit in hits)
            assert [hit.similarity for hit in hits] == pytest.approx(
                sorted(best[best >= 0.1], reverse=True)[:top_k], abs=1e-5
            )
    index.remove_owner("p0")
    assert len(index) == persons - 1 and all(hit.owner != "p0" for hit in index.search(centres[:1], 5, -1.0)[0])
