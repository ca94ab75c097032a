"""Which persons of one image are the same people as persons of another."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment


class Assignment(NamedTuple):
    """One-to-one matches ``(K,)`` each, plus the indices left without a partner."""

    rows: np.ndarray
    cols: np.ndarray
    similarity: np.ndarray
    unmatched_rows: np.ndarray
    unmatched_cols: np.ndarray


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` float32 rows scaled to unit length; a zero row stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` cosine similarity of embeddings ``a`` ``(N, D)`` and ``b`` ``(M, D)``.

    Rows need not be normalised; a zero row has similarity 0 with everything.
    """
    return unit_rows(a) @ unit_rows(b).T


# Pairs weigh exp(similarity / SHARPNESS) in the assignment: one strong pair outweighs two weak
# ones, so a person is not given away to a doubtful partner for the sake of one more match
# (measured with scripts/evaluate.py: fewer wrong matches across cameras and in MOT17).
SHARPNESS = 0.1


def match(similarity: np.ndarray, threshold: float) -> Assignment:
    """Match rows to columns one to one: the assignment that maximises the total of
    ``exp(similarity / SHARPNESS)`` over the pairs kept.

    A pair is a match only if its similarity is at least ``threshold``: pairs under it weigh
    nothing and are never assigned, so a weak pair can never take a partner away from a strong
    one. Matches come in row order.
    """
    n_rows, n_cols = similarity.shape
    eligible = similarity >= threshold
    weights = np.where(eligible, np.exp(np.asarray(similarity, dtype=np.float64) / SHARPNESS), 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    keep = eligible[rows, cols]
    rows, cols = rows[keep], cols[keep]
    return Assignment(
        rows=rows,
        cols=cols,
        similarity=similarity[rows, cols],
        unmatched_rows=unassigned(rows, n_rows),
        unmatched_cols=unassigned(cols, n_cols),
    )


def unassigned(assigned: np.ndarray, count: int) -> np.ndarray:
    """``(count - K,)`` int64: the indices below ``count`` not among the ``(K,)`` ``assigned``, ascending."""
    # A mask, not np.setdiff1d: the evaluation matches every pair at a hundred thresholds, and
    # setdiff1d's sorting was most of the time it took.
    left = np.ones(count, dtype=bool)
    left[assigned] = False
    return np.flatnonzero(left).astype(np.int64)
