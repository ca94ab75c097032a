"""Grouping persons of many images into identities."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reid.core.grouping import group_identities, ordered_identities, pair_links
from reid.core.matching import cosine_similarity, match
from reid.core.pipeline import Persons, build_group_response
from reid.schemas import ModelTags


def unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


embedding_sets = st.lists(
    st.integers(0, 5).flatmap(lambda n: arrays(np.float32, (n, 4), elements=st.floats(-1, 1, width=32))),
    min_size=2,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(0, 6), st.just(4)), elements=st.floats(-1, 1, width=32)),
    arrays(np.float32, st.tuples(st.integers(0, 6), st.just(4)), elements=st.floats(-1, 1, width=32)),
    st.floats(0.0, 0.95),
)
def test_on_two_images_the_identities_are_the_pairs_of_compare(first, second, threshold):
    clusters = group_identities([first, second], threshold)
    grouped = {(i, j) for i in range(len(first)) for j in range(len(second)) if clusters[0][i] == clusters[1][j]}
    found = match(cosine_similarity(first, second), threshold)
    assert grouped == set(zip(found.rows.tolist(), found.cols.tolist()))


@settings(max_examples=200, deadline=None)
@given(embedding_sets, st.floats(0.0, 0.95))
def test_no_identity_holds_two_persons_of_one_image_and_members_are_alike_on_average(embeddings, threshold):
    clusters = group_identities(embeddings, threshold)
    assert [len(c) for c in clusters] == [len(e) for e in embeddings]
    for image in clusters:
        assert len(set(image.tolist())) == len(image)
    image_of = np.concatenate([np.full(len(e), k) for k, e in enumerate(embeddings)])
    stacked = np.concatenate([e.reshape(-1, 4) for e in embeddings])
    labels = np.concatenate(clusters)
    similarity = cosine_similarity(stacked, stacked)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) > 1:
            cross = image_of[members][:, None] != image_of[members][None, :]
            assert similarity[np.ix_(members, members)][cross].mean() >= threshold - 1e-6


def test_one_person_seen_in_three_images_is_one_identity_and_a_stranger_stays_alone():
    person, stranger = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    embeddings = [unit(person), unit([0.95, 0.1, 0.0], stranger), unit([0.9, 0.0, 0.1])]
    clusters = ordered_identities(group_identities(embeddings, 0.5))
    assert [c.tolist() for c in clusters] == [[0], [0, 1], [0]]


def test_a_chain_of_links_does_not_join_two_different_people():
    # x (image 0) is like y (image 1), y like z (image 2), but x and z are different people:
    # the transitive closure of the pairwise matches would put all three together.
    x, y, z = unit([1.0, 0.0]), unit([0.8, 0.6]), unit([0.28, 0.96])
    assert cosine_similarity(x, y)[0, 0] > 0.7 and cosine_similarity(y, z)[0, 0] > 0.7
    assert cosine_similarity(x, z)[0, 0] < 0.3
    links = pair_links([x, y, z], 0.6)
    assert len(links) == 2
    clusters = group_identities([x, y, z], 0.6)
    assert clusters[0][0] != clusters[2][0]


def test_identities_are_numbered_biggest_first_then_by_first_appearance():
    clusters = [np.array([7, 3]), np.array([3, 9]), np.array([9, 5])]
    # sizes: 3 -> 2, 9 -> 2, 7 -> 1, 5 -> 1; 3 appears before 9, 7 before 5.
    assert [c.tolist() for c in ordered_identities(clusters)] == [[2, 0], [0, 1], [1, 3]]


def test_the_answer_puts_every_matchable_person_in_exactly_one_identity():
    embeddings = [unit([1, 0], [0, 1]), unit([0.1, 1]), unit([1, 0.05])]
    persons = []
    for found in embeddings:
        count = len(found) + 1  # one more person, too small to match
        boxes = np.array([[10 * i, 0, 10 * i + 8, 30] for i in range(count)])
        reason = np.array([""] * len(found) + ["too_small"], dtype=object)
        persons.append(Persons(boxes, np.full(count, 0.9, np.float32), reason, found))
    answer = build_group_response(persons, [(100, 50)] * 3, 0.5, 50, ModelTags(detector="d:1", embedder="e:1"))
    assert answer.image_count == 3 and [image.person_count for image in answer.images] == [3, 2, 2]
    members = [(m.image_index, m.person_index) for identity in answer.identities for m in identity.members]
    matchable = [(k, p.index) for k, image in enumerate(answer.images) for p in image.persons if p.matchable]
    assert sorted(members) == sorted(matchable)
    assert [len(identity.members) for identity in answer.identities] == [2, 2]
    assert all(p.identity is None for image in answer.images for p in image.persons if not p.matchable)
    for identity in answer.identities:
        for member in identity.members:
            assert answer.images[member.image_index].persons[member.person_index].identity == identity.identity
