"""Which persons of many images are the same people: identities across a group of images.

Each pair of images is matched as ``/compare`` matches two (one to one, at the threshold); those
links are then joined into identities, strongest first, average linkage: two clusters join only
when no image would appear twice and the mean similarity of all their cross pairs is at least
the threshold. On two images this gives exactly the pairs of ``/compare``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from reid.core.matching import cosine_similarity, match


def stacked_similarity(embeddings: list[np.ndarray]) -> np.ndarray:
    """``(N, N)`` cosine similarity of all persons of all images, ``N = sum M_i``, in image
    order, given each image's ``(M_i, D)`` embeddings."""
    found = [np.asarray(e, np.float32) for e in embeddings if len(e)]
    if not found:
        return np.zeros((0, 0), np.float32)
    # Block by block, as /compare computes a pair: one product of all persons rounds otherwise,
    # and a pair at the threshold to the last bit would group where it does not match.
    return np.block([[cosine_similarity(a, b) for b in found] for a in found])


def pair_links(embeddings: list[np.ndarray], threshold: float) -> np.ndarray:
    """``(K, 3)`` float64 rows ``(a, b, similarity)``: the one-to-one matches of every pair of
    images, as indices ``a < b`` into the stacked ``(sum M_i, D)`` embeddings of the images
    (``M_i`` persons each), strongest first (ties in index order)."""
    return _links(stacked_similarity(embeddings), [len(e) for e in embeddings], threshold)


def _links(similarity: np.ndarray, sizes: list[int], threshold: float) -> np.ndarray:
    """:func:`pair_links` from the stacked ``(N, N)`` similarity and the persons per image."""
    starts = np.cumsum([0, *sizes])
    rows = []
    for first, second in combinations(range(len(sizes)), 2):
        block = similarity[starts[first] : starts[first + 1], starts[second] : starts[second + 1]]
        if block.size == 0:
            continue
        found = match(block, threshold)
        rows.append(np.stack([found.rows + starts[first], found.cols + starts[second], found.similarity], axis=1))
    links = np.concatenate(rows) if rows else np.zeros((0, 3))
    return links[np.lexsort((links[:, 1], links[:, 0], -links[:, 2]))]


def group_identities(embeddings: list[np.ndarray], threshold: float) -> list[np.ndarray]:
    """Per image, ``(M_i,)`` int64 cluster of each of its persons given ``(M_i, D)`` embeddings.

    No cluster holds two persons of one image, and within a cluster the mean cosine similarity
    between members of different images is at least ``threshold``. Cluster numbers are
    arbitrary (see :func:`ordered_identities`).
    """
    sizes = [len(e) for e in embeddings]
    image_of = np.repeat(np.arange(len(embeddings)), sizes)
    similarity = stacked_similarity(embeddings)
    cluster = np.arange(len(similarity))
    members = {i: [i] for i in range(len(similarity))}
    for a, b, _ in _links(similarity, sizes, threshold):
        keep, gone = cluster[int(a)], cluster[int(b)]
        if keep == gone or np.intersect1d(image_of[members[keep]], image_of[members[gone]]).size:
            continue
        if similarity[np.ix_(members[keep], members[gone])].mean() < threshold:
            continue
        members[keep] += members.pop(gone)
        cluster[members[keep]] = keep
    return np.split(cluster, np.cumsum(sizes)[:-1])


def ordered_identities(clusters: list[np.ndarray]) -> list[np.ndarray]:
    """The clusters renumbered 0, 1, ...: the biggest first, then by first appearance (image,
    then person order)."""
    flat = np.concatenate(clusters) if clusters else np.zeros(0, np.int64)
    labels, first, counts = np.unique(flat, return_index=True, return_counts=True)
    rank = np.empty(len(labels), np.int64)
    rank[np.lexsort((first, -counts))] = np.arange(len(labels))
    renumber = dict(zip(labels.tolist(), rank.tolist()))
    return [np.array([renumber[c] for c in image], np.int64) for image in clusters]
