"""The gallery store on both engines: SQLite (a file) and PostgreSQL (a real server)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa

from reid.errors import GalleryModelMismatch, GalleryUnavailable, IdempotencyConflict, TimedOut
from reid.gallery.store import Gallery

MODEL = "person-embedder:one"
rng = np.random.default_rng(7)


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request, tmp_path):
    """A fresh, empty gallery URI of each engine."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.sqlite3")
    server = request.getfixturevalue("postgres_url")
    database = f"g{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{database}"


def vectors(count: int) -> np.ndarray:
    v = rng.normal(size=(count, 64)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_read_delete_and_clear(uri):
    gallery = Gallery(uri, MODEL)
    people = vectors(5)
    ids = [
        gallery.add(v, [i, i, i + 10, i + 20], label=f"p{i}", metadata={"i": i}).person_id for i, v in enumerate(people)
    ]
    found = gallery.search(people[[1, 3]] + 0.05 * vectors(2), top_k=2, threshold=0.5)
    assert [hits[0][0] for hits in found] == [ids[1], ids[3]]
    assert found[0][0][1] == "p1" and found[0][0][2] > 0.9
    stored = gallery.get(ids[2])
    assert stored is not None and stored.label == "p2" and stored.metadata == {"i": 2} and stored.bbox == [2, 2, 12, 22]
    page, total = gallery.page(1, 2)
    assert total == 5 and [p.person_id for p in page] == ids[1:3]
    assert gallery.delete(ids[1]) and not gallery.delete(ids[1]) and gallery.get(ids[1]) is None
    assert all(ids[1] not in [hit[0] for hit in hits] for hits in gallery.search(people, 5, -1.0))
    assert gallery.clear() == 4 and gallery.page(0, 10) == ([], 0)
    assert gallery.search(people, 5, -1.0) == [[]] * 5


def test_what_was_written_is_there_after_reopening(uri):
    people = vectors(20)
    first = Gallery(uri, MODEL)
    ids = [first.add(v, [0, 0, 10, 20]).person_id for v in people]
    first.delete(ids[0])
    first.close()
    again = Gallery(uri, MODEL)
    assert again.counts() == (19, 0)
    hits = again.search(people, 1, 0.99)
    assert hits[0] == [] and [h[0][0] for h in hits[1:]] == ids[1:]


def test_two_openers_see_each_others_writes(uri):
    """Two replicas (or two processes) on one store: a write through one is searched by the other."""
    one, other = Gallery(uri, MODEL), Gallery(uri, MODEL)
    person = vectors(1)
    added = one.add(person[0], [0, 0, 10, 20], label="seen")
    assert other.search(person, 1, 0.9)[0][0][0] == added.person_id
    other.delete(added.person_id)
    assert one.search(person, 1, 0.0) == [[]]


def test_concurrent_enrolments_lose_nothing(uri):
    gallery = Gallery(uri, MODEL)
    people = vectors(200)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda v: gallery.add(v, [0, 0, 10, 20]).person_id, people))
    assert len(set(ids)) == 200 and gallery.page(0, 1)[1] == 200
    assert [hits[0][0] for hits in gallery.search(people, 1, 0.99)] == ids
    assert Gallery(uri, MODEL).counts() == (200, 0)


def test_embeddings_of_another_model_are_never_compared(uri):
    old = Gallery(uri, "person-embedder:old")
    kept = old.add(vectors(1)[0], [0, 0, 10, 20], label="old").person_id
    new = Gallery(uri, MODEL)
    with pytest.raises(GalleryModelMismatch, match="person-embedder:old") as raised:
        new.search(vectors(1), 5, 0.0)
    assert raised.value.status == 409 and "reembed" in str(raised.value)
    with pytest.raises(GalleryModelMismatch):
        new.add(vectors(1)[0], [0, 0, 10, 20])
    assert new.get(kept) is not None and new.page(0, 5)[1] == 1  # still readable and deletable
    new.replace_embedding(new.get(kept).views[0].view_id, vectors(1)[0], MODEL)
    assert new.counts() == (1, 0) and len(new.search(vectors(1), 5, -1.0)[0]) == 1


def test_a_deleted_person_leaves_nothing_in_the_sqlite_files(tmp_path):
    """Read as an attacker with the disk would: the database file, its journal and its index."""
    path = tmp_path / "gallery.sqlite3"
    gallery = Gallery(str(path), MODEL)
    gallery.add(vectors(1)[0], [0, 0, 10, 20], label="kept-person")
    secret = vectors(1)[0]
    crop = b"CROP" + np.random.default_rng(5).bytes(6000)  # spills onto overflow pages
    gone = gallery.add(secret, [1, 2, 3, 4], label="erase-me-label", metadata={"note": "erase-me-too"}, crop=crop)

    def files() -> bytes:
        return b"".join(part.read_bytes() for part in tmp_path.glob("gallery.sqlite3*"))

    markers = [b"erase-me-label", b"erase-me-too", secret.tobytes(), crop[:64], crop[-64:], gone.person_id.encode()]
    assert all(marker in files() for marker in markers)
    assert gallery.delete(gone.person_id)
    left = files()
    assert [marker[:20] for marker in markers if marker in left] == []
    assert b"kept-person" in left
    assert gallery.clear() == 1 and b"kept-person" not in files()


def test_persons_past_the_retention_are_erased_on_the_next_use(uri):
    gallery = Gallery(uri, MODEL, retention_s=0.5)
    first = gallery.add(vectors(1)[0], [0, 0, 10, 20], label="enrolled-first")
    time.sleep(0.6)  # the first person is now past the retention
    second = gallery.add(vectors(1)[0], [0, 0, 10, 20], label="enrolled-second")
    assert [p.person_id for p in gallery.page(0, 10)[0]] == [second.person_id]
    assert gallery.get(first.person_id) is None and gallery.counts() == (1, 0)
    assert Gallery(uri, MODEL).expire(time.time() + 1) == 1 and Gallery(uri, MODEL).counts() == (0, 0)


def test_a_sqlite_store_that_is_corrupt_missing_or_foreign_is_refused_by_name(tmp_path):
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(bytes(range(256)) * 40)
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER)")
    orphan = tmp_path / "orphan.sqlite3"
    (tmp_path / "orphan.sqlite3-wal").write_bytes(b"journal")
    cases = {
        garbage: "corrupt or not a database",
        empty: "is empty",
        foreign: "not a ReID gallery",
        orphan: "is missing but its journal",
        tmp_path / "unmounted" / "gallery.sqlite3": "does not exist",
    }
    for path, why in cases.items():
        with pytest.raises(GalleryUnavailable, match=why) as raised:
            Gallery(str(path), MODEL)
        assert str(path.parent if why == "does not exist" else path) in str(raised.value)


def test_a_damaged_page_in_a_sqlite_store_is_caught_at_opening(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    gallery = Gallery(str(path), MODEL)
    for v in vectors(300):
        gallery.add(v, [0, 0, 10, 20], label="x" * 100)
    gallery.close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[5 * page : 7 * page] = bytes(2 * page)  # two b-tree pages zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryUnavailable, match=str(path)):
        Gallery(str(path), MODEL)


def test_an_unreachable_server_is_refused_without_its_password():
    with pytest.raises(GalleryUnavailable) as raised:
        Gallery("postgresql+psycopg://reid:s3cret@127.0.0.1:1/gallery", MODEL)
    assert "127.0.0.1:1" in str(raised.value) and "s3cret" not in str(raised.value)


@contextlib.contextmanager
def write_lock_held(uri: str) -> Iterator[None]:
    """Another writer holding the gallery's write lock (a reembed, another replica)."""
    if "://" not in uri:
        connection = sqlite3.connect(uri, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = sa.create_engine(uri)
    with engine.connect() as connection:
        connection.exec_driver_sql("LOCK TABLE reid_gallery_revision IN EXCLUSIVE MODE")
        yield
        connection.rollback()
    engine.dispose()


def test_a_write_past_its_deadline_is_rolled_back_and_never_committed_later(uri):
    gallery = Gallery(uri, MODEL)
    person = vectors(1)[0]
    with write_lock_held(uri):
        started = time.monotonic()
        with pytest.raises(TimedOut, match="nothing was stored"):
            gallery.add(person, [0, 0, 10, 20], label="late", deadline=started + 1.0)
        assert time.monotonic() - started < 3.0
    time.sleep(0.5)
    assert gallery.page(0, 5) == ([], 0) and Gallery(uri, MODEL).counts() == (0, 0)
    assert gallery.add(person, [0, 0, 10, 20], deadline=time.monotonic() + 5).label is None  # not stuck


def test_an_idempotency_key_stores_one_person_however_often_it_is_sent(uri):
    gallery = Gallery(uri, MODEL)
    person = vectors(1)[0]
    key = ("retry-1", "f" * 64)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(lambda _: gallery.add(person, [0, 0, 10, 20], label="once", key=key), range(16)))
    assert {p.person_id for p in stored} == {stored[0].person_id} and gallery.page(0, 5)[1] == 1
    with pytest.raises(IdempotencyConflict, match="another request") as conflict:
        gallery.add(person, [0, 0, 10, 20], label="other", key=("retry-1", "0" * 64))
    assert conflict.value.status == 409 and gallery.page(0, 5)[1] == 1
    gallery.delete(stored[0].person_id)
    again = gallery.add(person, [0, 0, 10, 20], label="once", key=key)
    assert again.person_id != stored[0].person_id and gallery.page(0, 5)[1] == 1


@pytest.mark.parametrize(
    "metadata", [{"x": float("nan")}, {"x": float("inf")}, {"note": "\ud800"}, {"\udfff": 1}], ids=str
)
def test_metadata_that_cannot_be_read_back_the_same_is_refused_before_writing(uri, metadata):
    gallery = Gallery(uri, MODEL)
    with pytest.raises(ValueError):
        gallery.add(vectors(1)[0], [0, 0, 10, 20], metadata=metadata)
    assert gallery.page(0, 5) == ([], 0)
    stored = gallery.add(vectors(1)[0], [0, 0, 10, 20], metadata={"é": [1.5, None, "ü"]})
    assert stored.metadata == gallery.get(stored.person_id).metadata == {"é": [1.5, None, "ü"]}


def test_a_person_of_several_views_is_found_by_its_best_view(uri):
    """Two cameras of one person: the second view finds what the first alone would not."""
    gallery = Gallery(uri, MODEL)
    front, side, other = vectors(3)
    person = gallery.add(front, [0, 0, 10, 20], label="two-cameras", source="cam-1")
    gallery.add(other, [0, 0, 10, 20], label="someone-else")
    query = side + 0.05 * vectors(1)[0]
    assert all(hit.person_id != person.person_id for hit in gallery.search(query[None], 5, 0.8)[0])
    seen = gallery.add_view(person.person_id, side, [5, 5, 15, 25], source="cam-2")
    assert [view.source for view in seen.views] == ["cam-1", "cam-2"] and seen.bbox == [0, 0, 10, 20]
    [[hit]] = gallery.search(query[None], 5, 0.8)
    assert (hit.person_id, hit.label, hit.view_id, hit.source) == (
        person.person_id,
        "two-cameras",
        seen.views[1].view_id,
        "cam-2",
    )
    assert gallery.add_view("0" * 32, side, [0, 0, 10, 20]) is None
    assert len(gallery) == 2 and gallery.page(0, 10)[1] == 2


def test_deleting_views_and_merging_persons(uri):
    gallery = Gallery(uri, MODEL)
    a, b, c = vectors(3)
    first = gallery.add(a, [0, 0, 10, 20], label="first", metadata={"keep": 1})
    second = gallery.add(b, [0, 0, 10, 20], label="second", source="cam-2")
    gallery.add_view(second.person_id, c, [0, 0, 10, 20], source="cam-3")
    merged = gallery.merge(first.person_id, second.person_id)
    assert merged.label == "first" and merged.metadata == {"keep": 1} and len(merged.views) == 3
    assert gallery.get(second.person_id) is None and gallery.page(0, 10)[1] == 1
    hits = [found[0] for found in gallery.search(np.stack([a, b, c]), 1, 0.99)]
    assert [(hit.person_id, hit.label) for hit in hits] == [(first.person_id, "first")] * 3 and len(gallery) == 1
    assert gallery.merge(first.person_id, second.person_id) is None
    with pytest.raises(ValueError, match="itself"):
        gallery.merge(first.person_id, first.person_id)
    views = [view.view_id for view in merged.views]
    removed, left = gallery.delete_view(first.person_id, views[0])
    assert removed and [view.view_id for view in left.views] == views[1:]
    assert gallery.search(a[None], 5, 0.99) == [[]]
    assert gallery.delete_view(first.person_id, views[0]) == (False, left)
    gallery.delete_view(first.person_id, views[1])
    assert gallery.delete_view(first.person_id, views[2]) == (True, None)  # the last view: the person is gone
    assert gallery.get(first.person_id) is None and gallery.page(0, 10) == ([], 0) and len(gallery) == 0
    assert gallery.search(np.stack([b, c]), 5, 0.0) == [[], []]


def test_a_gallery_of_one_view_per_person_is_upgraded_in_place(uri):
    """Written by the version before views: its persons, keys and searches carry over."""
    engine = sa.create_engine(uri if "://" in uri else f"sqlite:///{uri}")
    people = vectors(3)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE reid_gallery_persons (person_id VARCHAR(32) PRIMARY KEY, model VARCHAR(200) NOT NULL,"
            " label VARCHAR(200), metadata TEXT NOT NULL, bbox VARCHAR(80) NOT NULL, created FLOAT NOT NULL,"
            " embedding BYTEA NOT NULL, crop BYTEA)".replace("BYTEA", "BYTEA" if "://" in uri else "BLOB")
        )
        connection.exec_driver_sql("CREATE TABLE reid_gallery_revision (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)")
        connection.exec_driver_sql("INSERT INTO reid_gallery_revision VALUES (1, 3)")
        connection.exec_driver_sql(
            "CREATE TABLE reid_gallery_enrolments (key VARCHAR(200) PRIMARY KEY, fingerprint VARCHAR(64) NOT NULL,"
            " person_id VARCHAR(32) NOT NULL, created FLOAT NOT NULL)"
        )
        for i, vector in enumerate(people):
            connection.execute(
                sa.text(
                    "INSERT INTO reid_gallery_persons VALUES (:id, :model, :label, '{\"i\": 1}', :bbox, :t, :e, NULL)"
                ),
                {
                    "id": f"{i:032x}",
                    "model": MODEL,
                    "label": f"old-{i}",
                    "bbox": "[1,2,3,4]",
                    "t": time.time(),
                    "e": vector.tobytes(),
                },
            )
        connection.execute(
            sa.text("INSERT INTO reid_gallery_enrolments VALUES ('old-key', :f, :id, :t)"),
            {"f": "a" * 64, "id": f"{1:032x}", "t": time.time()},
        )
    engine.dispose()
    gallery = Gallery(uri, MODEL)
    assert [p.label for p in gallery.page(0, 10)[0]] == ["old-0", "old-1", "old-2"]
    assert gallery.get(f"{2:032x}").bbox == [1, 2, 3, 4] and gallery.get(f"{2:032x}").metadata == {"i": 1}
    assert [hits[0].person_id for hits in gallery.search(people, 1, 0.99)] == [f"{i:032x}" for i in range(3)]
    again = gallery.add(people[0], [0, 0, 10, 20], key=("old-key", "a" * 64))
    assert again.person_id == f"{1:032x}" and gallery.page(0, 10)[1] == 3
    tables = set(sa.inspect(gallery.engine).get_table_names())
    assert "reid_gallery_persons" not in tables and "reid_gallery_enrolments" not in tables


def test_views_deleted_or_merged_away_leave_nothing_in_the_sqlite_files(tmp_path):
    path = tmp_path / "gallery.sqlite3"
    gallery = Gallery(str(path), MODEL)
    kept = gallery.add(vectors(1)[0], [0, 0, 10, 20], label="kept-person")
    secret, merged_away = vectors(2)
    view = gallery.add_view(kept.person_id, secret, [0, 0, 10, 20], source="erase-this-camera").views[1]
    other = gallery.add(merged_away, [0, 0, 10, 20], label="merged-away-label", metadata={"n": "merged-away-note"})

    def files() -> bytes:
        return b"".join(part.read_bytes() for part in tmp_path.glob("gallery.sqlite3*"))

    markers = [secret.tobytes(), b"erase-this-camera", b"merged-away-label", b"merged-away-note"]
    assert all(marker in files() for marker in markers)
    gallery.delete_view(kept.person_id, view.view_id)
    gallery.merge(kept.person_id, other.person_id)
    assert [marker[:20] for marker in markers if marker in files()] == []
    assert merged_away.tobytes() in files()  # moved, not erased: it is the kept person's view now


def test_postgresql_search_runs_in_the_database_through_the_hnsw_index(postgres_url):
    """Past the exact-search size, the plan is an index scan, and it finds what exact search
    finds on clustered data (several views per identity, as a gallery holds)."""
    from reid.gallery.search import EXACT_BELOW_VIEWS

    database = f"g{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    admin.dispose()
    uri = postgres_url.rsplit("/", 1)[0] + f"/{database}"
    local = np.random.default_rng(11)
    identities, views = (EXACT_BELOW_VIEWS + 1000) // 3, 3
    centres = local.normal(size=(identities, 64)).astype(np.float32)
    embeddings = np.repeat(centres, views, axis=0) + 0.5 * local.normal(size=(identities * views, 64)).astype(
        np.float32
    )
    engine = sa.create_engine(uri)
    Gallery(uri, MODEL).close()
    from reid.gallery.schema import PERSONS, VIEWS

    with engine.begin() as connection:
        connection.execute(
            PERSONS.insert(),
            [{"person_id": f"{i:032x}", "label": None, "metadata": "{}", "created": 0.0} for i in range(identities)],
        )
        connection.execute(
            VIEWS.insert(),
            [
                {
                    "view_id": f"{i:032x}",
                    "person_id": f"{i // views:032x}",
                    "model": MODEL,
                    "bbox": "[0,0,1,2]",
                    "source": None,
                    "created": 0.0,
                    "embedding": e,
                    "crop": None,
                }
                for i, e in enumerate(embeddings)
            ],
        )
    gallery = Gallery(uri, MODEL)
    queries = centres[:50] + 0.5 * local.normal(size=(50, 64)).astype(np.float32)
    found = gallery.search(queries, 5, 0.0)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    best = (unit @ (queries / np.linalg.norm(queries, axis=1, keepdims=True)).T).reshape(identities, views, -1).max(1)
    exact = [set(f"{i:032x}" for i in np.argsort(-best[:, q])[:5]) for q in range(50)]
    recall = np.mean([len(exact[q] & {hit.person_id for hit in found[q]}) / 5 for q in range(50)])
    assert recall >= 0.98 and all(hits[0].person_id == f"{q:032x}" for q, hits in enumerate(found[:10]))
    with engine.connect() as connection:
        plan = (
            connection.exec_driver_sql(
                f"EXPLAIN SELECT view_id FROM reid_gallery_views WHERE vector_dims(embedding) = 64"
                f" ORDER BY (embedding::vector(64)) <=> '[{','.join(['0.1'] * 64)}]' LIMIT 5"
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert any("reid_gallery_views_hnsw_64" in line for line in plan)


def test_a_postgresql_server_without_pgvector_is_refused_by_name(postgres_url):
    """A user who may not create the extension, in a database that lacks it."""
    database, role = f"g{uuid.uuid4().hex[:12]}", f"r{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        connection.exec_driver_sql(f"CREATE DATABASE {database} OWNER {role}")
    admin.dispose()
    uri = postgres_url.replace("postgres@", f"{role}@").rsplit("/", 1)[0] + f"/{database}"
    with pytest.raises(GalleryUnavailable, match="lacks the pgvector extension") as raised:
        Gallery(uri, MODEL)
    assert "scripts/pgvector.sh" in str(raised.value)
