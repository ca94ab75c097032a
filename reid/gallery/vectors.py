"""Exact cosine search over keyed embeddings held in memory."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Hit(NamedTuple):
    """One search result."""

    key: str
    similarity: float


class VectorIndex:
    """Keyed ``(D,)`` float32 embeddings, searched exactly (one matrix product per query batch).

    Rows live in a buffer that doubles when full, so adding is amortised O(D); a removed row's
    slot is reused by the next add.
    """

    def __init__(self) -> None:
        self._matrix = np.zeros((0, 0), np.float32)  # (capacity, D), unit rows
        self._keys: list[str] = []  # per slot; "" where free
        self._alive = np.zeros(0, bool)  # per slot
        self._slot: dict[str, int] = {}
        self._free: list[int] = []

    @classmethod
    def of(cls, keys: list[str], embeddings: np.ndarray) -> VectorIndex:
        """An index of distinct ``keys`` and their ``(N, D)`` embeddings, built in one go."""
        index = cls()
        if len(keys):
            matrix = np.asarray(embeddings, np.float32).reshape(len(keys), -1)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            index._matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
            index._keys = list(keys)
            index._alive = np.ones(len(keys), bool)
            index._slot = {key: slot for slot, key in enumerate(keys)}
        return index

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, key: str, embedding: np.ndarray) -> None:
        """Store (or replace) ``key``'s ``(D,)`` embedding, normalised to unit length."""
        vector = np.asarray(embedding, np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        vector = vector / norm if norm > 0 else vector
        if self._matrix.shape[1] not in (0, len(vector)):
            raise ValueError(f"embedding of {len(vector)} values in an index of {self._matrix.shape[1]}")
        if key in self._slot:
            self._matrix[self._slot[key]] = vector
            return
        if not self._free:
            self._grow(len(vector))
        slot = self._free.pop()
        self._matrix[slot] = vector
        self._keys[slot] = key
        self._alive[slot] = True
        self._slot[key] = slot

    def remove(self, key: str) -> None:
        """Forget ``key`` (nothing if absent)."""
        slot = self._slot.pop(key, None)
        if slot is not None:
            self._matrix[slot] = 0.0
            self._keys[slot] = ""
            self._alive[slot] = False
            self._free.append(slot)

    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Hit]]:
        """Per ``(Q, D)`` query, up to ``top_k`` hits of cosine similarity at least ``threshold``, best first."""
        if not self._slot or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        queries = np.asarray(queries, np.float32).reshape(len(queries), -1)
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        unit = np.divide(queries, norms, out=np.zeros_like(queries), where=norms > 0)
        scores = self._matrix @ unit.T  # (capacity, Q)
        scores[~self._alive] = -np.inf
        k = min(top_k, len(self._slot))
        best = np.argpartition(-scores, k - 1, axis=0)[:k]  # (k, Q), unordered
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(scores, best, axis=0), axis=0, kind="stable"), 0)
        top = np.take_along_axis(scores, best, axis=0)
        return [
            [Hit(self._keys[i], float(s)) for i, s in zip(best[:, q], top[:, q]) if s >= threshold]
            for q in range(len(queries))
        ]

    def _grow(self, dimension: int) -> None:
        capacity = max(1024, 2 * len(self._keys))
        grown = np.zeros((capacity, dimension), np.float32)
        if len(self._keys):
            grown[: len(self._keys)] = self._matrix
        self._free = list(range(capacity - 1, len(self._keys) - 1, -1))
        self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._keys), bool)])
        self._keys += [""] * (capacity - len(self._keys))
        self._matrix = grown
