"""The gallery at scale: search latency, memory and enrolment throughput at 1,000, 10,000 and
100,000 stored persons, on SQLite and (with --postgresql) on a throwaway PostgreSQL server.

Stores are filled with synthetic embeddings (random unit vectors of the embedder's size) by one
bulk insert; what is measured then goes through the gallery's own code: opening it (loading the
embeddings into memory), searching (1 and 10 persons per query, top 5), and enrolling one person
at a time, each committed before the next. With --serve, the service itself is started on the
largest SQLite store and measured over HTTP: /gallery/search of a real frame and
/gallery/persons enrolments from 4 clients.

    .venv/bin/python scripts/gallery_scale.py --postgresql --serve --json docs/gallery-scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import sqlalchemy as sa

from reid.gallery.store import PERSONS, Gallery

MODEL = "person-embedder:synthetic"
DIMENSION = 256


def fill(uri: str, count: int, rng: np.random.Generator) -> None:
    """``count`` synthetic persons, in one transaction per 10,000."""
    Gallery(uri, MODEL).close()  # creates the tables
    engine = sa.create_engine(uri if "://" in uri else f"sqlite:///{uri}")
    for start in range(0, count, 10_000):
        vectors = rng.normal(size=(min(10_000, count - start), DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            {
                "person_id": uuid.uuid4().hex,
                "model": MODEL,
                "label": f"synthetic {start + i}",
                "metadata": "{}",
                "bbox": "[0,0,64,128]",
                "created": time.time(),
                "embedding": v.tobytes(),
                "crop": None,
            }
            for i, v in enumerate(vectors)
        ]
        with engine.begin() as connection:
            connection.execute(PERSONS.insert(), rows)
    engine.dispose()


def measure_store(uri: str, count: int, seed: int) -> dict:
    """Run in a fresh process, so that its memory growth is the gallery's alone."""
    rng = np.random.default_rng(seed)
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    gallery = Gallery(uri, MODEL)
    open_s = time.perf_counter() - started
    grown = process.memory_info().rss - before
    # The whole process's growth: the embeddings in memory and what reading them left behind.
    figures = {"persons": count, "open_s": round(open_s, 3), "rss_growth_mb": round(grown / 2**20, 1)}
    for persons in (1, 10):
        seconds = []
        for _ in range(50):
            queries = rng.normal(size=(persons, DIMENSION)).astype(np.float32)
            started = time.perf_counter()
            gallery.search(queries, 5, 0.33)
            seconds.append(time.perf_counter() - started)
        figures[f"search_{persons}_ms_p50"] = round(statistics.median(seconds) * 1000, 2)
    enrolled = 200
    started = time.perf_counter()
    for v in rng.normal(size=(enrolled, DIMENSION)).astype(np.float32):
        gallery.add(v, [0, 0, 64, 128], label="enrolled")
    figures["enrol_per_s"] = round(enrolled / (time.perf_counter() - started), 1)
    gallery.close()
    return figures


def in_fresh_process(uri: str, count: int) -> dict:
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_store, uri, count, count).result()


def measure_service(store: Path, frames: list[Path], requests: int) -> dict:
    """The service on the filled store: search and enrolment over HTTP."""
    import concurrent.futures

    import httpx

    from tools.processes import MemoryWatch, serve_bentoml

    with serve_bentoml(env={"REID_GALLERY_URI": str(store)}) as server:
        entry_pid = next(pid for name, pid in server.processes().items() if name.startswith("ReID"))
        memory = MemoryWatch({"entry": entry_pid})
        try:
            url = server.url
            seconds = []
            for k in range(requests):
                started = time.perf_counter()
                response = httpx.post(
                    f"{url}/gallery/search", files={"image": frames[k % len(frames)].open("rb")}, timeout=120
                )
                response.raise_for_status()
                seconds.append(time.perf_counter() - started)
            # The same frames' persons enrolled by box (no detection): the embedder and the store.
            data = {"bbox": "100,100,300,600", "label": "measured"}

            def enrol(k: int) -> None:
                files = {"image": frames[k % len(frames)].open("rb")}
                httpx.post(f"{url}/gallery/persons", files=files, data=data, timeout=120).raise_for_status()

            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(enrol, range(requests)))
            enrol_rate = requests / (time.perf_counter() - started)
        finally:
            memory.stop()
        return {
            "persons": int(json.loads(httpx.get(f"{url}/gallery/persons", params={"limit": 1}).text)["total"]),
            "search_p50_ms": round(statistics.median(seconds) * 1000, 1),
            "enrol_per_s_4_clients": round(enrol_rate, 2),
            "entry_peak_rss_mb": round(memory.peak["entry"] / 2**20, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--postgresql", action="store_true", help="also on a throwaway PostgreSQL server")
    parser.add_argument("--serve", action="store_true", help="also measure the service on the largest store")
    parser.add_argument("--frames", type=Path, default=Path("../shared/data/two-camera-hall/HALL-3P/img1"))
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="reid-gallery-scale-"))
    results: dict = {"sqlite": [], "postgresql": []}
    with contextlib.ExitStack() as stack:
        server = None
        if args.postgresql:
            from tools.postgres import postgres_server

            server = stack.enter_context(postgres_server())
        for count in args.sizes:
            store = folder / f"gallery-{count}.sqlite3"
            fill(str(store), count, rng)
            results["sqlite"].append(in_fresh_process(str(store), count))
            print("sqlite", results["sqlite"][-1], flush=True)
            if server:
                database = f"scale{count}"
                admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.exec_driver_sql(f"CREATE DATABASE {database}")
                admin.dispose()
                uri = server.rsplit("/", 1)[0] + f"/{database}"
                fill(uri, count, rng)
                results["postgresql"].append(in_fresh_process(uri, count))
                print("postgresql", results["postgresql"][-1], flush=True)
        if args.serve:
            largest = folder / f"gallery-{max(args.sizes)}.sqlite3"
            # The service embeds with the real embedder: give the synthetic rows its tag.
            from reid.config import Settings
            from reid.models.store import stored_model

            tag = str(stored_model(Settings().embedder_model).tag)
            engine = sa.create_engine(f"sqlite:///{largest}")
            with engine.begin() as connection:
                connection.execute(PERSONS.update().values(model=tag))
                connection.execute(sa.text("UPDATE reid_gallery_revision SET value = value + 1"))
            engine.dispose()
            results["service"] = measure_service(largest, sorted(args.frames.glob("*.jpg")), args.requests)
            print("service", results["service"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
