"""Exact cosine search over keyed embeddings held in memory, each owned by a person: a person
scores by its best view."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reid.core.matching import unit_rows


class Hit(NamedTuple):
    """One search result: the owner's best view and its similarity."""

    key: str
    owner: str
    similarity: float


class VectorIndex:
    """Keyed ``(D,)`` float32 embeddings with their owners, searched exactly (one matrix product
    per query batch).

    Rows live in a buffer that doubles when full, so adding is amortised O(D); a removed row's
    slot is reused by the next add.
    """

    def __init__(self) -> None:
        self._matrix = np.zeros((0, 0), np.float32)  # (capacity, D), unit rows
        self._keys: list[str] = []  # per slot; "" where free
        self._owners: list[str] = []  # per slot; "" where free
        self._alive = np.zeros(0, bool)  # per slot
        self._slot: dict[str, int] = {}
        self._owned: dict[str, set[str]] = {}  # owner -> its keys
        self._free: list[int] = []

    @classmethod
    def of(cls, keys: list[str], owners: list[str], embeddings: np.ndarray) -> VectorIndex:
        """An index of distinct ``keys``, their ``owners`` and their ``(N, D)`` embeddings, built in one go."""
        index = cls()
        if len(keys):
            index._matrix = unit_rows(np.asarray(embeddings).reshape(len(keys), -1))
            index._keys, index._owners = list(keys), list(owners)
            index._alive = np.ones(len(keys), bool)
            index._slot = {key: slot for slot, key in enumerate(keys)}
            for key, owner in zip(keys, owners):
                index._owned.setdefault(owner, set()).add(key)
        return index

    def __len__(self) -> int:
        """Owners held."""
        return len(self._owned)

    def add(self, key: str, owner: str, embedding: np.ndarray) -> None:
        """Store ``key``'s ``(D,)`` embedding, normalised to unit length, owned by ``owner``."""
        vector = unit_rows(np.asarray(embedding).reshape(1, -1))[0]
        if self._matrix.shape[1] not in (0, len(vector)):
            raise ValueError(f"embedding of {len(vector)} values in an index of {self._matrix.shape[1]}")
        self.remove(key)
        if not self._free:
            self._grow(len(vector))
        slot = self._free.pop()
        self._matrix[slot] = vector
        self._keys[slot], self._owners[slot] = key, owner
        self._alive[slot] = True
        self._slot[key] = slot
        self._owned.setdefault(owner, set()).add(key)

    def remove(self, key: str) -> None:
        """Forget ``key`` (nothing if absent)."""
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        owned = self._owned[self._owners[slot]]
        owned.discard(key)
        if not owned:
            del self._owned[self._owners[slot]]
        self._matrix[slot] = 0.0
        self._keys[slot] = self._owners[slot] = ""
        self._alive[slot] = False
        self._free.append(slot)

    def remove_owner(self, owner: str) -> None:
        """Forget every key of ``owner``."""
        for key in list(self._owned.get(owner, ())):
            self.remove(key)

    def reassign(self, owner: str, to: str) -> None:
        """Give every key of ``owner`` to ``to``."""
        keys = self._owned.pop(owner, set())
        for key in keys:
            self._owners[self._slot[key]] = to
        if keys:
            self._owned.setdefault(to, set()).update(keys)

    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Hit]]:
        """Per ``(Q, D)`` query, up to ``top_k`` owners whose best key has a cosine similarity of
        at least ``threshold``, best first, each with that key."""
        if not self._slot or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores = self._matrix @ unit_rows(np.asarray(queries).reshape(len(queries), -1)).T  # (capacity, Q)
        scores[~self._alive] = -np.inf
        return [self._best_owners(scores[:, q], top_k, threshold) for q in range(len(queries))]

    def _best_owners(self, scores: np.ndarray, top_k: int, threshold: float) -> list[Hit]:
        """The ``top_k`` owners by best key of one query's ``(capacity,)`` scores: the best
        ``candidates`` keys, widened until they hold ``top_k`` owners or every key."""
        alive = len(self._slot)
        candidates = min(alive, 4 * top_k)
        while True:
            best = np.argpartition(-scores, candidates - 1)[:candidates]
            best = best[np.argsort(-scores[best], kind="stable")]
            hits: dict[str, Hit] = {}
            for slot in best:
                if scores[slot] < threshold or len(hits) == top_k:
                    break
                owner = self._owners[slot]
                if owner not in hits:
                    hits[owner] = Hit(self._keys[slot], owner, float(scores[slot]))
            ended = len(hits) == top_k or candidates == alive or scores[best[-1]] < threshold
            if ended:
                return list(hits.values())
            candidates = min(alive, 2 * candidates)

    def _grow(self, dimension: int) -> None:
        capacity = max(1024, 2 * len(self._keys))
        grown = np.zeros((capacity, dimension), np.float32)
        if len(self._keys):
            grown[: len(self._keys)] = self._matrix
        self._free = list(range(capacity - 1, len(self._keys) - 1, -1))
        self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._keys), bool)])
        added = capacity - len(self._keys)
        self._keys += [""] * added
        self._owners += [""] * added
        self._matrix = grown
