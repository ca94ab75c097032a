"""Scoring embeddings by retrieval: rank-1, rank-5 and mAP of queries against a gallery of
labelled crops, by the standard person re-identification protocol (torchreid's
``evaluate_rank``, which ``tests/unit/test_evaluation.py`` holds it to)."""

from __future__ import annotations

import numpy as np


def retrieval_metrics(
    similarity: np.ndarray,
    query_ids: np.ndarray,
    query_cams: np.ndarray,
    gallery_ids: np.ndarray,
    gallery_cams: np.ndarray,
) -> dict[str, float]:
    """Rank-1, rank-5 and mAP of ``(Q, G)`` query-to-gallery similarities, standard protocol.

    For each query, gallery entries of the same identity seen by the same camera are left out;
    queries left with no entry of their identity are not scored (``queries`` counts the rest).
    """
    hits1, hits5, precisions = [], [], []
    for q in range(len(query_ids)):
        keep = ~((gallery_ids == query_ids[q]) & (gallery_cams == query_cams[q]))
        relevant = (gallery_ids[keep] == query_ids[q])[np.argsort(-similarity[q, keep], kind="stable")]
        if not relevant.any():
            continue
        hits1.append(relevant[:1].any())
        hits5.append(relevant[:5].any())
        ranks = np.flatnonzero(relevant) + 1
        precisions.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    if not precisions:
        return {"rank1": float("nan"), "rank5": float("nan"), "mAP": float("nan"), "queries": 0}
    return {
        "rank1": float(np.mean(hits1)),
        "rank5": float(np.mean(hits5)),
        "mAP": float(np.mean(precisions)),
        "queries": len(precisions),
    }
