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
growth, and a second process (a replica) finding a person the first just enrolled. With
``--serve``, the stores carry the service's embedder tag, and ``bentoml serve`` is measured on
the largest PostgreSQL gallery and on an empty one: its entry process's memory after the same
``/gallery/search`` requests of real frames.

    .venv/bin/python scripts/gallery_scale.py --serve --json docs/gallery-scale.json
    .venv/bin/python scripts/gallery_scale.py --sizes 10000 --engines sqlite    # a quick look
    .venv/bin/python scripts/gallery_scale.py --crossover 500 1000 2000 4000 8000 --json docs/gallery-crossover.json
    .venv/bin/python scripts/gallery_scale.py --ef-search 40 80 120 160 240 --sizes 100000 --json docs/gallery-ef.json
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
from reid_devtools.reports import publish

MODEL = "person-embedder:synthetic"
DIMENSION = 256
SPREAD = 0.75  # a view is its centre plus this much noise (norm): cosine to the centre about 0.8
GROUP_SIZE = 50  # persons who look alike
# A person's centre is its group's plus this much noise (norm): a new view of a person is at
# cosine 0.64 to its stored views on average, 0.48 to its look-alikes' and 0 +- 0.06 to anyone
# else's. At 1.0 (look-alikes at 0.32) a million persons' chance similarities (the highest of 2
# million at 0 +- 0.06: about 0.34) outrank look-alikes, and exact search's top 5 is no longer
# a structure any index can find (recall@5 0.65 at 1,000,000, 1.0 at 10,000).
GROUP_SPREAD = 0.6
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


def centres(count: int, seed: int, spread: float = GROUP_SPREAD) -> np.ndarray:
    """``(count, D)`` unit person centres in groups of GROUP_SIZE look-alikes, ``spread`` from
    their group's; the same for the same seed."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(-(-count // GROUP_SIZE), DIMENSION)).astype(np.float32)
    groups /= np.linalg.norm(groups, axis=1, keepdims=True)
    return around(np.repeat(groups, GROUP_SIZE, axis=0)[:count], spread, rng)


def views_of(centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new view of each ``(N, D)`` centre, unit length."""
    return around(centre, SPREAD, rng)


def around(points: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Each ``(N, D)`` point plus random noise of norm about ``spread``, unit length."""
    moved = points + rng.normal(size=points.shape).astype(np.float32) * np.float32(spread / DIMENSION**0.5)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def fill(
    uri: str, persons: int, views: int, seed: int, model: str = MODEL, spread: float = GROUP_SPREAD
) -> tuple[np.ndarray, list[str]]:
    """``persons`` synthetic persons of ``views`` views each: their ``(persons * views, D)``
    views (a person's views in a row) and their ids."""
    Gallery(uri, model).close()  # the tables
    rng = np.random.default_rng(seed + 1)
    everything = centres(persons, seed, spread)
    stored = np.empty((persons * views, DIMENSION), np.float32)
    person_ids: list[str] = []
    for start in range(0, persons, CHUNK):
        part = everything[start : start + CHUNK]
        made = np.stack([views_of(part, rng) for _ in range(views)], axis=1).reshape(-1, DIMENSION)
        stored[start * views : start * views + len(made)] = made
        ids = [uuid.uuid4().hex for _ in range(len(part))]
        (_copy if "://" in uri else _insert)(uri, ids, made, views, model)
        person_ids += ids
    return stored, person_ids


def _insert(uri: str, ids: list[str], made: np.ndarray, views: int, model: str) -> None:
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
                    "model": model,
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


def _copy(uri: str, ids: list[str], made: np.ndarray, views: int, model: str) -> None:
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
                    copy.write_row([uuid.uuid4().hex, ids[k // views], model, "[0,0,64,128]", now, vector])


def exact_top(stored: np.ndarray, views: int, queries: np.ndarray, k: int = 5) -> list[set[int]]:
    """Per query, the ``k`` persons (by number) whose best view is nearest: exact search."""
    best = (stored @ queries.T).reshape(-1, views, len(queries)).max(axis=1)  # (persons, Q)
    return [set(np.argpartition(-best[:, q], k)[:k].tolist()) for q in range(len(queries))]


def measure(uri: str, persons: int, views: int, seed: int, searches: int, model: str, spread: float) -> dict:
    """Run in a fresh process: the gallery as an entry process would hold it."""
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    gallery = Gallery(uri, model)
    figures: dict = {"persons": persons, "views": persons * views, "open_s": round(time.perf_counter() - started, 2)}
    rng = np.random.default_rng(seed + 2)
    asked = rng.integers(0, persons, size=searches * 10)
    queries = views_of(centres(persons, seed, spread)[asked], rng)
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
    figures["queries"], figures["asked"] = queries[:200], asked[:200]
    gallery.close()
    return figures


def replicas_agree(uri: str, seed: int, model: str) -> dict:
    """Two processes on one store: how long until one finds a person the other just enrolled."""
    context = multiprocessing.get_context("spawn")
    vector = views_of(centres(1, seed + 4), np.random.default_rng(seed))[0]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        pool.submit(_open, uri, model).result()
        person = pool.submit(_enrol, uri, model, vector).result()
        began = time.perf_counter()
        found = pool.submit(_find, uri, model, vector, person).result()
    return {"replica_found_at_once": found, "replica_check_s": round(time.perf_counter() - began, 2)}


def _open(uri: str, model: str) -> None:
    Gallery(uri, model).close()


def _enrol(uri: str, model: str, vector: np.ndarray) -> str:
    return Gallery(uri, model).add(vector, [0, 0, 64, 128], label="replica").person_id


def _find(uri: str, model: str, vector: np.ndarray, person: str) -> bool:
    return Gallery(uri, model).search(vector[None], 1, 0.99)[0][0].person_id == person


def run_size(
    uri: str, persons: int, views: int, searches: int, seed: int, model: str = MODEL, spread: float = GROUP_SPREAD
) -> dict:
    """Fill, measure in a fresh process, score recall, check replicas."""
    began = time.perf_counter()
    stored, person_ids = fill(uri, persons, views, seed, model, spread)
    load_s = time.perf_counter() - began
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        figures = pool.submit(measure, uri, persons, views, seed, searches, model, spread).result()
    queries, found = figures.pop("queries"), figures.pop("found")
    number = {person_id: n for n, person_id in enumerate(person_ids)}
    exact = exact_top(stored, views, queries)
    recall = [len(exact[q] & {number.get(p, -1) for p in hits}) / 5 for q, hits in enumerate(found)]
    figures["load_s"] = round(load_s, 1)
    figures["recall_at_5"] = round(float(np.mean(recall)), 4)
    figures["own_person_first"] = round(
        float(np.mean([hits[0] == person_ids[p] for hits, p in zip(found, figures.pop("asked"))])), 4
    )
    figures.update(replicas_agree(uri, seed, model))
    return figures


def measure_entry(server: str, full: str, frames: list[Path], requests: int) -> dict:
    """The entry process of ``bentoml serve`` on the full gallery and on an empty one: its
    resident memory after the same searches of real frames over HTTP (their persons: the
    queries), and the search's latency."""
    import httpx

    from reid_devtools.processes import serve_bentoml

    figures: dict = {}
    for name, uri in (("empty", _database(server, "scale_empty")), ("full", full)):
        with serve_bentoml(env={"REID_GALLERY_URI": uri}) as running:
            entry = psutil.Process(next(pid for name, pid in running.processes().items() if name.startswith("ReID")))
            seconds = []
            for k in range(requests):
                began = time.perf_counter()
                with frames[k % len(frames)].open("rb") as image:
                    answer = httpx.post(f"{running.url}/gallery/search", files={"image": image}, timeout=120)
                answer.raise_for_status()
                seconds.append(time.perf_counter() - began)
            figures[f"entry_rss_mb_{name}"] = round(entry.memory_info().rss / 2**20, 1)
            figures[f"search_frame_ms_p50_{name}"] = round(statistics.median(seconds) * 1000, 1)
            figures[f"gallery_size_{name}"] = answer.json()["gallery_size"]
    figures["entry_growth_mb"] = round(figures["entry_rss_mb_full"] - figures["entry_rss_mb_empty"], 1)
    return figures


def crossover(server: str, sizes: list[int], searches: int) -> list[dict]:
    """Exact scan against the HNSW index on PostgreSQL, per gallery size in views: where exact
    search is as fast (``reid.gallery.search.EXACT_BELOW_VIEWS``)."""
    from reid.gallery import search

    rows = []
    for views in sizes:
        database = f"crossover{views}"
        uri = _database(server, database)
        fill(uri, views // 2, 2, views)
        gallery = Gallery(uri, MODEL)
        queries = views_of(centres(views // 2, views)[:searches], np.random.default_rng(1))
        row: dict = {"views": views}
        for name, below in (("exact", 10**12), ("hnsw", 0)):
            search.EXACT_BELOW_VIEWS = below
            seconds = []
            for query in queries:
                began = time.perf_counter()
                gallery.search(query[None], 5, -1.0)
                seconds.append(time.perf_counter() - began)
            row[f"{name}_ms_p50"] = round(statistics.median(seconds) * 1000, 2)
        gallery.close()
        rows.append(row)
        print("crossover", row, flush=True)
        _drop(server, database)
    return rows


def ef_sweep(server: str, persons: int, values: list[int], searches: int, spread: float) -> list[dict]:
    """Recall@5 against exact search and latency per ``hnsw.ef_search``, on a gallery of its own
    (seed 7: not the galleries reported), to choose ``reid.gallery.search.HNSW_EF_SEARCH``."""
    from reid.gallery import search

    uri = _database(server, "ef_sweep")
    stored, person_ids = fill(uri, persons, 2, 7, MODEL, spread)
    gallery = Gallery(uri, MODEL)
    rng = np.random.default_rng(9)
    queries = views_of(centres(persons, 7, spread)[rng.integers(0, persons, searches)], rng)
    exact = exact_top(stored, 2, queries)
    number = {person_id: n for n, person_id in enumerate(person_ids)}
    rows = []
    for value in values:
        search.HNSW_EF_SEARCH = value
        seconds, recall = [], []
        for q, query in enumerate(queries):
            began = time.perf_counter()
            hits = gallery.search(query[None], 5, -1.0)[0]
            seconds.append(time.perf_counter() - began)
            recall.append(len(exact[q] & {number[hit.person_id] for hit in hits}) / 5)
        rows.append(
            {
                "ef_search": value,
                "search_1_ms_p50": round(statistics.median(seconds) * 1000, 2),
                "recall_at_5": round(float(np.mean(recall)), 4),
            }
        )
        print("ef_search", rows[-1], flush=True)
    gallery.close()
    _drop(server, "ef_sweep")
    return rows


def _service_embedder() -> str:
    """The tag of the embedder ``bentoml serve`` would load."""
    from reid.config import Settings
    from reid.models.store import stored_model

    return str(stored_model(Settings().embedder_model).tag)


def _database(server: str, name: str) -> str:
    """A new database on the server; its URL."""
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def _drop(server: str, name: str) -> None:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="persons")
    parser.add_argument("--views", type=int, default=2, help="views per person")
    parser.add_argument("--group-spread", type=float, default=GROUP_SPREAD, help="look-alikes' spread (GROUP_SPREAD)")
    parser.add_argument("--engines", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--sqlite-up-to", type=int, default=100_000, help="the largest SQLite store (all in memory)")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument(
        "--serve", action="store_true", help="also measure bentoml serve's entry on the largest PostgreSQL gallery"
    )
    parser.add_argument("--frames", type=Path, default=Path("../shared/data/two-camera-hall/HALL-3P/img1"))
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="*", help="only: recall and latency per hnsw.ef_search")
    parser.add_argument(
        "--crossover", type=int, nargs="*", help="only: exact against HNSW on PostgreSQL at these numbers of views"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="reid-gallery-scale-"))
    results: dict = {
        "views_per_person": args.views,
        "dimension": DIMENSION,
        "group_size": GROUP_SIZE,
        "group_spread": args.group_spread,
        "postgresql": [],
        "sqlite": [],
    }
    with contextlib.ExitStack() as stack:
        server = None
        if "postgresql" in args.engines or args.crossover or args.ef_search:
            from reid_devtools.postgres import postgres_server

            server = stack.enter_context(postgres_server(SERVER))
        if args.crossover:
            publish({"crossover": crossover(server, args.crossover, args.searches)}, args.json)
            return 0
        if args.ef_search:
            persons = args.sizes[0]
            rows = ef_sweep(server, persons, args.ef_search, args.searches, args.group_spread)
            publish({"persons": persons, "group_spread": args.group_spread, "ef_search": rows}, args.json)
            return 0
        # With --serve, the service's embedder tag, so that the service searches what is stored.
        model = _service_embedder() if args.serve else MODEL
        for persons in args.sizes:
            if server:
                uri = _database(server, f"scale{persons}")
                figures = run_size(uri, persons, args.views, args.searches, persons, model, args.group_spread)
                results["postgresql"].append(figures)
                print("postgresql", results["postgresql"][-1], flush=True)
                if args.serve and persons == max(args.sizes):
                    frames = sorted(args.frames.glob("*.jpg"))
                    results["service"] = {"persons": persons, **measure_entry(server, uri, frames, args.requests)}
                    print("service", results["service"], flush=True)
                _drop(server, f"scale{persons}")
            if "sqlite" in args.engines and persons <= args.sqlite_up_to:
                store = folder / f"gallery-{persons}.sqlite3"
                figures = run_size(str(store), persons, args.views, args.searches, persons, MODEL, args.group_spread)
                results["sqlite"].append(figures)
                print("sqlite", results["sqlite"][-1], flush=True)
                for part in folder.glob(f"gallery-{persons}.sqlite3*"):
                    part.unlink()
    publish(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
