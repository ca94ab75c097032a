"""The gallery's two searches, one interface: the engine decides.

- SQLite: :class:`MemorySearch`, exact cosine search over the process's copy of the views'
  embeddings, reloaded when another process wrote (the gallery's revision counter).
- PostgreSQL: :class:`PgvectorSearch`, search in the database through a pgvector HNSW index over
  the views (cosine), with the threshold applied there; no copy in the process, nothing to reload.

A person scores by its best view; each hit names that view.
"""

from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple, Protocol

import numpy as np
import sqlalchemy as sa
from typing_extensions import override

from reid.gallery.schema import PERSONS, VIEWS, embedding_array
from reid.gallery.vectors import VectorIndex

# Below this many views an exact scan is as fast as the index, and exact (pgvector 0.8.0, 256
# values, this machine: 1.9 against 1.9 ms at 500 views, 2.6 against 2.2 at 2,000, 7.7 against
# 2.9 at 8,000; scripts/gallery_scale.py --crossover).
EXACT_BELOW_VIEWS = 2_000
# A denser graph than pgvector's defaults (16, 64): at 1,000,000 persons those gave recall@5 0.87,
# and more ef_search did not lift it past 0.93 (docs/gallery-scale-m16.json, docs/gallery-ef-1m.json);
# 24 and 100 gave 0.987 at a p50 of 17.7 ms (docs/gallery-scale.json; a first run 0.995,
# docs/gallery-scale-1m-m24.json).
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 100
# recall@5 0.995 from 80 up at 100,000 persons (pgvector's default, 40: 0.92), 160 for margin at larger
# galleries; scripts/gallery_scale.py --ef-search (docs/gallery-ef.json)
HNSW_EF_SEARCH = 160
COUNT_TTL_S = 10.0  # how long a PostgreSQL gallery's size is taken as known
EXACT_COUNT_BELOW = 100_000  # past this, PostgreSQL's own estimate of the size (pg_class)


class Found(NamedTuple):
    """A person found by a search, by its best view."""

    person_id: str
    label: str | None
    similarity: float
    view_id: str
    source: str | None


class Search(Protocol):
    """What the gallery needs of a search."""

    def reload(self, connection: sa.Connection) -> None:
        """Take every change in the store (another process wrote, or a change not applied in place)."""

    def added(self, view_id: str, person_id: str, vector: np.ndarray, label: str | None, source: str | None) -> None:
        """This process stored a view (a new person's first, or another)."""

    def removed(self, person_id: str) -> None:
        """This process removed a person."""

    def view_removed(self, view_id: str, person_id: str, person_gone: bool) -> None:
        """This process removed a view of a person, and the person with it when ``person_gone``."""

    def merged(self, person_id: str, other_id: str) -> None:
        """This process moved every view of ``other_id`` to ``person_id`` and removed ``other_id``."""

    def relabelled(self, person_id: str, label: str | None) -> None:
        """This process gave a person a new label."""

    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Found]]:
        """Per ``(Q, D)`` query, up to ``top_k`` persons of at least ``threshold`` cosine
        similarity by their best view, best first."""

    def size(self) -> int:
        """Persons searched."""


class MemorySearch(Search):
    """Exact search over an in-memory copy of one model's views (SQLite)."""

    def __init__(self, engine: sa.Engine, model: str) -> None:
        self.engine = engine
        self.model = model
        self._lock = threading.Lock()
        self._index = VectorIndex()
        self._labels: dict[str, str | None] = {}
        self._sources: dict[str, str | None] = {}

    @override
    def reload(self, connection: sa.Connection) -> None:
        keys: list[str] = []
        owners: list[str] = []
        sources: dict[str, str | None] = {}
        chunks = []
        query = sa.select(VIEWS.c.view_id, VIEWS.c.person_id, VIEWS.c.source, VIEWS.c.embedding).where(
            VIEWS.c.model == self.model
        )
        # In parts, so that reading 100,000 embeddings never holds them all as Python objects.
        for part in connection.execution_options(yield_per=5000).execute(query).partitions():
            keys += [row.view_id for row in part]
            owners += [row.person_id for row in part]
            sources.update((row.view_id, row.source) for row in part if row.source is not None)
            chunks.append(np.stack([embedding_array(row.embedding) for row in part]))
        labels = dict(connection.execute(sa.select(PERSONS.c.person_id, PERSONS.c.label)).all())
        index = VectorIndex.of(keys, owners, np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32))
        with self._lock:
            self._index, self._labels, self._sources = index, labels, sources

    @override
    def added(self, view_id: str, person_id: str, vector: np.ndarray, label: str | None, source: str | None) -> None:
        with self._lock:
            self._index.add(view_id, person_id, vector)
            self._labels[person_id] = label
            if source is not None:
                self._sources[view_id] = source

    @override
    def removed(self, person_id: str) -> None:
        with self._lock:
            self._index.remove_owner(person_id)
            self._labels.pop(person_id, None)

    @override
    def view_removed(self, view_id: str, person_id: str, person_gone: bool) -> None:
        with self._lock:
            self._index.remove(view_id)
            self._sources.pop(view_id, None)
            if person_gone:
                self._labels.pop(person_id, None)

    @override
    def merged(self, person_id: str, other_id: str) -> None:
        with self._lock:
            self._index.reassign(other_id, person_id)
            self._labels.pop(other_id, None)

    @override
    def relabelled(self, person_id: str, label: str | None) -> None:
        with self._lock:
            if person_id in self._labels:
                self._labels[person_id] = label

    @override
    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Found]]:
        with self._lock:
            hits = self._index.search(np.asarray(queries, np.float32), top_k, threshold)
            return [
                [
                    Found(hit.owner, self._labels.get(hit.owner), hit.similarity, hit.key, self._sources.get(hit.key))
                    for hit in found
                ]
                for found in hits
            ]

    @override
    def size(self) -> int:
        return len(self._index)


class PgvectorSearch(Search):
    """Search in PostgreSQL through a pgvector HNSW index (cosine) over the views of one
    embedding size: a partial index on ``embedding::vector(D)`` where the view has D values,
    built once the size is known (at start when views exist, else after the first)."""

    def __init__(self, engine: sa.Engine, model: str) -> None:
        self.engine = engine
        self.model = model
        self._dimension: int | None = None
        self._counted = (-math.inf, 0, 0)  # (time.monotonic(), persons, views)

    @override
    def reload(self, connection: sa.Connection) -> None:
        found = connection.execute(
            sa.select(sa.func.vector_dims(VIEWS.c.embedding)).where(VIEWS.c.model == self.model).limit(1)
        ).scalar()
        self._counted = (-math.inf, 0, 0)
        if found is not None:
            self.ensure_index(int(found))

    def ensure_index(self, dimension: int) -> None:
        """The HNSW index of views of ``dimension`` values, built where missing (one builder at a
        time: an advisory lock). Built over the views already stored, which is far faster than
        indexing them one by one; the build is fastest when the server's maintenance_work_mem
        holds the graph (about 1.3 kB per view of 256 values)."""
        if self._dimension == dimension:
            return
        name = f"reid_gallery_views_hnsw_{dimension}"
        with self.engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON {VIEWS.name} USING hnsw"
                f" ((embedding::vector({dimension})) vector_cosine_ops)"
                f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
                f" WHERE vector_dims(embedding) = {dimension}"
            )
            # Fresh statistics, or the planner, misled by a bulk load it has not counted yet,
            # prefers another index and sorts every view.
            connection.exec_driver_sql(f"ANALYZE {VIEWS.name}")
        self._dimension = dimension

    @override
    def added(self, view_id: str, person_id: str, vector: np.ndarray, label: str | None, source: str | None) -> None:
        self.ensure_index(int(np.asarray(vector).size))
        self._counted = (-math.inf, 0, 0)

    @override
    def removed(self, person_id: str) -> None:
        self._counted = (-math.inf, 0, 0)

    @override
    def view_removed(self, view_id: str, person_id: str, person_gone: bool) -> None:
        self._counted = (-math.inf, 0, 0)

    @override
    def merged(self, person_id: str, other_id: str) -> None:
        self._counted = (-math.inf, 0, 0)

    @override
    def relabelled(self, person_id: str, label: str | None) -> None:
        return None  # labels are read with each search

    @override
    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Found]]:
        queries = np.asarray(queries, np.float32)
        if self._dimension is None or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        exact = self._counts()[1] < EXACT_BELOW_VIEWS
        found: list[list[Found]] = [[] for _ in range(len(queries))]
        pending = list(range(len(queries)))
        candidates = 4 * top_k
        while pending:
            rows = self._nearest_views(queries[pending], candidates, threshold, exact)
            widen = []
            for place, number in enumerate(pending):
                views = rows.get(place, [])
                found[number] = _best_per_person(views, top_k)
                # Every view within the threshold was seen unless the limit cut them off.
                if len(found[number]) < top_k and len(views) == candidates:
                    widen.append(number)
            pending, candidates = widen, 2 * candidates
        return found

    def _nearest_views(
        self, queries: np.ndarray, candidates: int, threshold: float, exact: bool
    ) -> dict[int, list[tuple[float, str, str, str | None, str | None]]]:
        """Per query (by place), up to ``candidates`` views of at least ``threshold`` similarity,
        nearest first: ``(similarity, view_id, person_id, label, source)``."""
        dimension = self._dimension
        statement = sa.text(
            f"""
            SELECT q.n - 1 AS place, hit.view_id, hit.person_id, hit.source, p.label, 1 - hit.distance AS similarity
            FROM unnest(CAST(:queries AS vector({dimension})[])) WITH ORDINALITY AS q(vector, n)
            CROSS JOIN LATERAL (
                SELECT v.view_id, v.person_id, v.source,
                       (v.embedding::vector({dimension})) <=> q.vector AS distance
                FROM {VIEWS.name} v
                WHERE vector_dims(v.embedding) = {dimension} AND v.model = :model
                ORDER BY distance
                LIMIT :candidates
            ) hit
            JOIN {PERSONS.name} p ON p.person_id = hit.person_id
            WHERE hit.distance <= :max_distance
            ORDER BY place, hit.distance
            """
        )
        texts = ["[" + ",".join(f"{value:.9g}" for value in query) + "]" for query in queries]
        # This transaction's settings, in one round trip.
        settings = sa.text(
            "SELECT set_config('hnsw.ef_search', :ef_search, true),"
            " set_config('hnsw.iterative_scan', 'strict_order', true), set_config('enable_indexscan', :index, true)"
        )
        with self.engine.begin() as connection:
            ef_search = max(HNSW_EF_SEARCH, min(candidates, 1000))
            connection.execute(settings, {"ef_search": str(ef_search), "index": "off" if exact else "on"})
            rows = connection.execute(
                statement,
                {"queries": texts, "model": self.model, "candidates": candidates, "max_distance": 1.0 - threshold},
            ).all()
        nearest: dict[int, list] = {}
        for row in rows:
            nearest.setdefault(row.place, []).append(
                (float(row.similarity), row.view_id, row.person_id, row.label, row.source)
            )
        return nearest

    @override
    def size(self) -> int:
        return self._counts()[0]

    def _counts(self) -> tuple[int, int]:
        """``(persons, views)``, counted at most every COUNT_TTL_S; past EXACT_COUNT_BELOW views,
        PostgreSQL's estimate (counting a million rows takes longer than a search)."""
        when, persons, views = self._counted
        if time.monotonic() - when < COUNT_TTL_S:
            return persons, views
        with self.engine.connect() as connection:
            estimates: dict[str, float] = dict(
                connection.execute(
                    sa.text("SELECT relname, reltuples FROM pg_class WHERE relname IN (:persons, :views)"),
                    {"persons": PERSONS.name, "views": VIEWS.name},
                ).all()
            )
            if estimates.get(VIEWS.name, -1) >= EXACT_COUNT_BELOW and estimates.get(PERSONS.name, -1) >= 0:
                persons, views = int(estimates[PERSONS.name]), int(estimates[VIEWS.name])
            else:
                persons = connection.execute(sa.select(sa.func.count()).select_from(PERSONS)).scalar_one()
                views = connection.execute(sa.select(sa.func.count()).select_from(VIEWS)).scalar_one()
        self._counted = (time.monotonic(), int(persons), int(views))
        return int(persons), int(views)


def _best_per_person(views: list[tuple[float, str, str, str | None, str | None]], top_k: int) -> list[Found]:
    """The first ``top_k`` persons of views sorted nearest first, each by its nearest view."""
    best: dict[str, Found] = {}
    for similarity, view_id, person_id, label, source in views:
        if person_id not in best:
            best[person_id] = Found(person_id, label, similarity, view_id, source)
            if len(best) == top_k:
                break
    return list(best.values())


def search_of(engine: sa.Engine, model: str) -> Search:
    """The search the engine takes: in the database on PostgreSQL, in memory on SQLite."""
    return PgvectorSearch(engine, model) if engine.dialect.name == "postgresql" else MemorySearch(engine, model)
