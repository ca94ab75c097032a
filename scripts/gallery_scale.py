"""The gallery at scale: search latency and recall, memory, enrolment rate and replicas, on
PostgreSQL with pgvector (search in the database, HNSW) and on SQLite (exact, in memory).

Stores are filled with clustered synthetic embeddings, as a ReID gallery holds them: people
fall into groups that look alike (clothing, build: GROUP_SIZE persons around a random
direction), each person has a centre near its group's, and ``--views`` views around that centre
(cosine about 0.8 to it); a query is a new view of a stored person, so that its nearest persons
are its own, then its look-alikes, as with real embeddings. Filling is a bulk load (PostgreSQL: a binary COPY, then the
gallery builds its index when it opens). What is measured goes through the gallery's own code,
in a fresh process: opening it, searching (1 and 10 query persons, top 5, no threshold: p50
and p99 of ``--searches``), recall@5 against exact search (the persons whose best view is
nearest), enrolling one person at a time (each committed before the next), the process's memory
growth, and a second process (a replica) finding a person the first just enrolled.

    .venv/bin/python scripts/gallery_scale.py --json docs/gallery-scale.json
    .venv/bin/python scripts/gallery_scale.py --sizes 10000 --engines sqlite    # a quick look
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import sqlalchemy as sa

from reid.gallery.schema import PERSONS, VIEWS
from reid.gallery.store import Gallery
from tools.reports import publish

MODEL = "person-embedder:synthetic"
DIMENSION = 256
SPREAD = 0.75  # a view is its centre plus this much noise (norm): cosine to the centre about 0.8
GROUP_SIZE = 50  # persons who look alike
GROUP_SPREAD = 1.0  # a person's centre is its group's plus this much noise (norm)
CHUNK = 20_000  # persons written per transaction
# The throwaway server, sized for a million persons on this machine (24 GiB): the index build
# holds its graph in memory; no WAL beyond what recovery needs for a bulk load.
SERVER = {
    "maintenance_work_mem": "8GB",
    "max_parallel_maintenance_workers": "2",
    "shared_buffers": "4GB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "8GB",
}


def centres(count: int, seed: int) -> np.ndarray:
    """``(count, D)`` unit person centres in groups of GROUP_SIZE look-alikes, the same for the same seed."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(-(-count // GROUP_SIZE), DIMENSION)).astype(np.float32)
    groups /= np.linalg.norm(groups, axis=1, keepdims=True)
    return around(np.repeat(groups, GROUP_SIZE, axis=0)[:count], GROUP_SPREAD, rng)


def views_of(centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new view of each ``(N, D)`` centre, unit length."""
    return around(centre, SPREAD, rng)


def around(points: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Each ``(N, D)`` point plus random noise of norm about ``spread``, unit length."""
    moved = points + rng.normal(size=points.shape).astype(np.float32) * np.float32(spread / DIMENSION**0.5)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def fill(uri: str, persons: int, views: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``persons`` synthetic persons of ``views`` views each: their ``(persons * views, D)``
    views (a person's views in a row) and their ids."""
    Gallery(uri, MODEL).close()  # the tables
    rng = np.random.default_rng(seed + 1)
    everything = centres(persons, seed)
    stored = np.empty((persons * views, DIMENSION), np.float32)
    person_ids: list[str] = []
    for start in range(0, persons, CHUNK):
        part = everything[start : start + CHUNK]
        made = np.stack([views_of(part, rng) for _ in range(views)], axis=1).reshape(-1, DIMENSION)
        stored[start * views : start * views + len(made)] = made
        ids = [uuid.uuid4().hex for _ in range(len(part))]
        (_copy if "://" in uri else _insert)(uri, ids, made, views)
        person_ids += ids
    return stored, person_ids


def _insert(uri: str, ids: list[str], made: np.ndarray, views: int) -> None:
    engine = sa.create_engine(f"sqlite:///{uri}")
    now = time.time()
    with engine.begin() as connection:
        connection.execute(
            PERSONS.insert(), [{"person_id": i, "label": None, "metadata": "{}", "created": now} for i in ids]
        )
        connection.execute(
            VIEWS.insert(),
            [
                {
                    "view_id": uuid.uuid4().hex,
                    "person_id": ids[k // views],
                    "model": MODEL,
                    "bbox": "[0,0,64,128]",
                    "source": None,
                    "created": now,
                    "embedding": vector.tobytes(),
                    "crop": None,
                }
                for k, vector in enumerate(made)
            ],
        )
    engine.dispose()


def _copy(uri: str, ids: list[str], made: np.ndarray, views: int) -> None:
    """A binary COPY: the fastest way into PostgreSQL."""
    import psycopg
    from pgvector.psycopg import register_vector

    now = time.time()
    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://")) as connection:
        register_vector(connection)
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {PERSONS.name} (person_id, metadata, created) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["varchar", "text", "float8"])
                for person_id in ids:
                    copy.write_row([person_id, "{}", now])
            columns = "view_id, person_id, model, bbox, created, embedding"
            with cursor.copy(f"COPY {VIEWS.name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["varchar", "varchar", "varchar", "varchar", "float8", "vector"])
                for k, vector in enumerate(made):
                    copy.write_row([uuid.uuid4().hex, ids[k // views], MODEL, "[0,0,64,128]", now, vector])


def exact_top(stored: np.ndarray, views: int, queries: np.ndarray, k: int = 5) -> list[set[int]]:
    """Per query, the ``k`` persons (by number) whose best view is nearest: exact search."""
    best = (stored @ queries.T).reshape(-1, views, len(queries)).max(axis=1)  # (persons, Q)
    return [set(np.argpartition(-best[:, q], k)[:k].tolist()) for q in range(len(queries))]


def measure(uri: str, persons: int, views: int, seed: int, searches: int) -> dict:
    """Run in a fresh process: the gallery as an entry process would hold it."""
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    gallery = Gallery(uri, MODEL)
    figures: dict = {"persons": persons, "views": persons * views, "open_s": round(time.perf_counter() - started, 2)}
    rng = np.random.default_rng(seed + 2)
    wanted = centres(persons, seed)[rng.integers(0, persons, size=searches * 10)]
    queries = views_of(wanted, rng)
    for count in (1, 10):
        seconds = []
        for start in range(0, searches * count, count):
            began = time.perf_counter()
            gallery.search(queries[start : start + count], 5, -1.0)
            seconds.append(time.perf_counter() - began)
        figures[f"search_{count}_ms_p50"] = round(statistics.median(seconds) * 1000, 2)
        figures[f"search_{count}_ms_p99"] = round(float(np.percentile(seconds, 99)) * 1000, 2)
    figures["found"] = [[hit.person_id for hit in hits] for hits in gallery.search(queries[:200], 5, -1.0)]
    figures["rss_growth_mb"] = round((process.memory_info().rss - before) / 2**20, 1)
    enrolled = 200
    new = views_of(centres(enrolled, seed + 3), rng)
    began = time.perf_counter()
    for vector in new:
        gallery.add(vector, [0, 0, 64, 128])
    figures["enrol_per_s"] = round(enrolled / (time.perf_counter() - began), 1)
    figures["queries"] = queries[:200]
    gallery.close()
    return figures


def replicas_agree(uri: str, seed: int) -> dict:
    """Two processes on one store: how long until one finds a person the other just enrolled."""
    context = multiprocessing.get_context("spawn")
    vector = views_of(centres(1, seed + 4), np.random.default_rng(seed))[0]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        pool.submit(_open, uri).result()
        person = pool.submit(_enrol, uri, vector).result()
        began = time.perf_counter()
        found = pool.submit(_find, uri, vector, person).result()
    return {"replica_found_at_once": found, "replica_check_s": round(time.perf_counter() - began, 2)}


def _open(uri: str) -> None:
    Gallery(uri, MODEL).close()


def _enrol(uri: str, vector: np.ndarray) -> str:
    return Gallery(uri, MODEL).add(vector, [0, 0, 64, 128], label="replica").person_id


def _find(uri: str, vector: np.ndarray, person: str) -> bool:
    return Gallery(uri, MODEL).search(vector[None], 1, 0.99)[0][0].person_id == person


def run_size(uri: str, persons: int, views: int, searches: int, seed: int) -> dict:
    """Fill, measure in a fresh process, score recall, check replicas."""
    began = time.perf_counter()
    stored, person_ids = fill(uri, persons, views, seed)
    load_s = time.perf_counter() - began
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        figures = pool.submit(measure, uri, persons, views, seed, searches).result()
    queries, found = figures.pop("queries"), figures.pop("found")
    number = {person_id: n for n, person_id in enumerate(person_ids)}
    exact = exact_top(stored, views, queries)
    recall = [len(exact[q] & {number.get(p, -1) for p in hits}) / 5 for q, hits in enumerate(found)]
    figures["load_s"] = round(load_s, 1)
    figures["recall_at_5"] = round(float(np.mean(recall)), 4)
    figures.update(replicas_agree(uri, seed))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="persons")
    parser.add_argument("--views", type=int, default=2, help="views per person")
    parser.add_argument("--engines", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--sqlite-up-to", type=int, default=100_000, help="the largest SQLite store (all in memory)")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="reid-gallery-scale-"))
    results: dict = {"views_per_person": args.views, "dimension": DIMENSION, "postgresql": [], "sqlite": []}
    with contextlib.ExitStack() as stack:
        server = None
        if "postgresql" in args.engines:
            from tools.postgres import postgres_server

            server = stack.enter_context(postgres_server(SERVER))
        for persons in args.sizes:
            if server:
                database = f"scale{persons}"
                admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.exec_driver_sql(f"CREATE DATABASE {database}")
                admin.dispose()
                results["postgresql"].append(
                    run_size(server.rsplit("/", 1)[0] + f"/{database}", persons, args.views, args.searches, persons)
                )
                print("postgresql", results["postgresql"][-1], flush=True)
                admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.exec_driver_sql(f"DROP DATABASE {database}")
                admin.dispose()
            if "sqlite" in args.engines and persons <= args.sqlite_up_to:
                store = folder / f"gallery-{persons}.sqlite3"
                results["sqlite"].append(run_size(str(store), persons, args.views, args.searches, persons))
                print("sqlite", results["sqlite"][-1], flush=True)
                for part in folder.glob(f"gallery-{persons}.sqlite3*"):
                    part.unlink()
    publish(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
