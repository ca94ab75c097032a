import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reid.core.matching import cosine_similarity, match


def test_cosine_similarity_of_known_vectors():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    b = np.array([[3.0, 0.0], [1.0, 1.0]])
    expected = np.array([[1.0, 1 / np.sqrt(2)], [0.0, 1 / np.sqrt(2)], [0.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), expected, atol=1e-6)


def test_a_strong_pair_is_not_broken_up_for_two_weaker_ones():
    # The raw sum would prefer (0, 1) + (1, 0) = 1.2 over (0, 0) = 0.9 alone.
    similarity = np.array([[0.9, 0.6], [0.6, 0.1]])
    result = match(similarity, threshold=0.5)
    assert list(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 0)]


def test_two_nearly_as_strong_pairs_beat_one():
    # Greedy would take (0, 0) at 0.9 and leave row 1 with nothing; both 0.85 and 0.88 are kept.
    similarity = np.array([[0.9, 0.85], [0.88, 0.1]])
    result = match(similarity, threshold=0.5)
    assert list(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 1), (1, 0)]
    assert result.unmatched_rows.size == 0 and result.unmatched_cols.size == 0


def test_threshold_is_inclusive_and_pairs_under_it_never_match():
    similarity = np.array([[0.5, 0.2], [0.2, 0.49999]])
    result = match(similarity, threshold=0.5)
    assert list(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 0)]
    assert result.unmatched_rows.tolist() == [1]
    assert result.unmatched_cols.tolist() == [1]


def test_weak_pair_never_takes_a_partner_from_a_strong_one():
    # Maximising the raw sum would pick (0,1)+(1,0) = 0.95 + 0.3; (1,0) is under the threshold,
    # so the only valid matching with a strong pair keeps (0,1) alone or (0,0) alone.
    similarity = np.array([[0.7, 0.95], [0.3, 0.2]])
    result = match(similarity, threshold=0.6)
    assert list(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 1)]


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_empty_sides(shape):
    result = match(np.zeros(shape), threshold=0.5)
    assert result.rows.size == 0
    assert result.unmatched_rows.tolist() == list(range(shape[0]))
    assert result.unmatched_cols.tolist() == list(range(shape[1]))


def test_more_persons_on_one_side():
    similarity = np.array([[0.1, 0.9, 0.2, 0.3], [0.8, 0.1, 0.2, 0.1]])
    result = match(similarity, threshold=0.5)
    assert list(zip(result.rows.tolist(), result.cols.tolist())) == [(0, 1), (1, 0)]
    assert result.unmatched_cols.tolist() == [2, 3]


def test_ties_are_resolved_one_to_one_and_deterministically():
    similarity = np.full((3, 3), 0.7)
    first = match(similarity, threshold=0.7)
    second = match(similarity, threshold=0.7)
    assert len(set(first.rows.tolist())) == 3 and len(set(first.cols.tolist())) == 3
    assert first.cols.tolist() == second.cols.tolist()


def test_threshold_zero_and_one():
    similarity = np.array([[0.0, -0.2], [1.0, 0.3]])
    assert match(similarity, threshold=1.0).rows.tolist() == [1]
    # At 0 every pair but the negative one may match; the strong (1, 0) outweighs (0, 0) + (1, 1).
    everything = match(similarity, threshold=0.0)
    assert sorted(zip(everything.rows.tolist(), everything.cols.tolist())) == [(1, 0)]


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(0, 6), st.integers(0, 6)), elements=st.floats(-1, 1)),
    st.floats(0, 1),
)
def test_matches_are_one_to_one_above_threshold_and_partition_indices(similarity, threshold):
    result = match(similarity, threshold)
    assert len(set(result.rows.tolist())) == len(result.rows)
    assert len(set(result.cols.tolist())) == len(result.cols)
    assert np.all(result.similarity >= threshold)
    assert sorted(result.rows.tolist() + result.unmatched_rows.tolist()) == list(range(similarity.shape[0]))
    assert sorted(result.cols.tolist() + result.unmatched_cols.tolist()) == list(range(similarity.shape[1]))
    # Maximal: no unmatched row and unmatched column could still form a valid pair.
    for i in result.unmatched_rows:
        for j in result.unmatched_cols:
            assert similarity[i, j] < threshold
