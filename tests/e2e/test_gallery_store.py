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
    new.replace_embedding(kept, vectors(1)[0], MODEL)
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
    with pytest.raises(IdempotencyConflict, match="another enrolment") as conflict:
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
