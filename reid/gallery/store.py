"""A persistent gallery of people: per person a label and free metadata, and one or more views,
each an embedding with its box, source (a camera's name, say), the embedder's tag, the time and
(optionally) the crop it came from.

One code path over SQLAlchemy Core, two engines: SQLite in a file (the default, no server) and
PostgreSQL with pgvector (a server that several replicas share) when ``REID_GALLERY_URI`` is a
``postgresql+psycopg://`` URL. A write is committed (SQLite: WAL, ``synchronous=FULL``) before
it returns. Search (:mod:`reid.gallery.search`) scores a person by its best view: exact, over the
process's in-memory copy of the embeddings on SQLite, kept current through a revision counter
that every write increments in its own transaction; in the database through an HNSW index on
PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from reid.errors import GalleryModelMismatch, GalleryUnavailable, IdempotencyConflict, TimedOut
from reid.gallery.schema import KEYS, PERSONS, REVISION, VIEWS, create, embedding_value, is_gallery
from reid.gallery.search import Found, search_of

KEY_RETENTION_S = 24 * 3600  # idempotency keys are forgotten after this
RETENTION_CHECK_S = 3600.0  # how often, at most, views past the retention are looked for
SQLITE_BUSY_TIMEOUT_S = 30.0  # a write without a deadline waits this long for another writer
# A view as read back: every column but the embedding, and whether a crop was kept.
_VIEWS = sa.select(
    *(c for c in VIEWS.c if c.name not in ("embedding", "crop")), VIEWS.c.crop.is_not(None).label("has_crop")
)


@dataclass(frozen=True)
class StoredView:
    """One view of a stored person, without its embedding."""

    view_id: str
    model: str
    bbox: list[int]
    source: str | None
    created: float  # seconds since the epoch, UTC
    has_crop: bool


@dataclass(frozen=True)
class StoredPerson:
    """One gallery entry, with its views (oldest first), without their embeddings."""

    person_id: str
    label: str | None
    metadata: dict
    created: float  # seconds since the epoch, UTC
    views: tuple[StoredView, ...]

    @property
    def model(self) -> str:
        """The embedder of its first view."""
        return self.views[0].model

    @property
    def bbox(self) -> list[int]:
        """The box of its first view."""
        return self.views[0].bbox

    @property
    def has_crop(self) -> bool:
        """Whether a view's crop was kept."""
        return any(view.has_crop for view in self.views)


def _stored_json(metadata: dict) -> str:
    """Metadata serialised before a write, as it will be read back: what cannot round-trip
    (NaN, infinities, lone surrogates) is refused here, with a ValueError."""
    text = json.dumps(metadata, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    return text


def _view(row: sa.Row) -> StoredView:
    return StoredView(
        view_id=row.view_id,
        model=row.model,
        bbox=json.loads(row.bbox),
        source=row.source,
        created=row.created,
        has_crop=bool(row.has_crop),
    )


def _persons(connection: sa.Connection, rows: Sequence[sa.Row]) -> list[StoredPerson]:
    """The persons of identity rows, with their views, in the rows' order (one without views,
    deleted in between, is left out)."""
    ids = [row.person_id for row in rows]
    views: dict[str, list[StoredView]] = {}
    query = _VIEWS.where(VIEWS.c.person_id.in_(ids)).order_by(VIEWS.c.created, VIEWS.c.view_id)
    for view in connection.execute(query):
        views.setdefault(view.person_id, []).append(_view(view))
    return [
        StoredPerson(row.person_id, row.label, json.loads(row.metadata), row.created, tuple(views[row.person_id]))
        for row in rows
        if row.person_id in views
    ]


def _person(connection: sa.Connection, person_id: str) -> StoredPerson | None:
    row = connection.execute(sa.select(PERSONS).where(PERSONS.c.person_id == person_id)).first()
    found = [] if row is None else _persons(connection, [row])
    return found[0] if found else None


class _AlreadyStored(Exception):
    """A write's idempotency key was stored before, with ``person``."""

    def __init__(self, person: StoredPerson) -> None:
        super().__init__(person.person_id)
        self.person = person


class _NoPerson(Exception):
    """A write for a person that is not (or no longer) in the gallery."""


def redacted(uri: str) -> str:
    """The URI as it may be logged: a password in it replaced by ``***``."""
    if "://" not in uri:
        return uri
    return sa.engine.make_url(uri).render_as_string(hide_password=True)


def open_engine(uri: str) -> sa.Engine:
    """The SQLAlchemy engine of a gallery URI: a server URL, or a SQLite file path checked first
    (GalleryUnavailable naming it when its folder is missing, or it is empty, corrupt or
    not a gallery)."""
    if "://" in uri:
        engine = sa.create_engine(uri, pool_pre_ping=True)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            raise GalleryUnavailable(
                f"cannot reach the gallery at {redacted(uri)}: {error.__class__.__name__}"
            ) from error
        return engine
    path = Path(uri).expanduser().resolve()
    _check_file(path)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    if path.exists():
        _check_sqlite(engine, path)
    return engine


def _check_file(path: Path) -> None:
    if not path.parent.is_dir():
        raise GalleryUnavailable(f"the gallery's folder {path.parent} does not exist (REID_GALLERY_URI={path})")
    if path.exists() and path.stat().st_size == 0:
        raise GalleryUnavailable(f"the gallery file {path} is empty: not a gallery; move it away or fix the path")
    if not path.exists() and Path(f"{path}-wal").exists():
        raise GalleryUnavailable(f"the gallery file {path} is missing but its journal {path}-wal is there; restore it")


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    # WAL with a sync on every commit: a write is on disk when the request returns.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    # A deleted person's label, metadata, embedding and crop are overwritten with zeros, in the
    # page written to the journal as in the file once checkpointed (see Gallery._erase_traces).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _check_sqlite(engine: sa.Engine, path: Path) -> None:
    try:
        with engine.connect() as connection:
            verdict = connection.exec_driver_sql("PRAGMA quick_check").scalar()
            tables = set(sa.inspect(connection).get_table_names())
    except sa.exc.DatabaseError as error:
        raise GalleryUnavailable(f"the gallery file {path} is corrupt or not a database ({error.orig})") from error
    if verdict != "ok":
        raise GalleryUnavailable(f"the gallery file {path} is corrupt: {verdict}")
    if not is_gallery(tables):
        raise GalleryUnavailable(f"{path} is a database but not a ReID gallery (tables: {sorted(tables)[:5]})")


class Gallery:
    """The gallery of one embedder (its tag: ``model``): add persons and views, search, read,
    edit, merge and delete.

    Views embedded by another model are kept, listed and deletable, but while any remain,
    adding and searching raise GalleryModelMismatch: embeddings of different models are never
    compared. Thread-safe.
    """

    def __init__(self, uri: str, model: str, retention_s: float | None = None) -> None:
        self.uri = redacted(uri)
        self.model = model
        self.retention_s = retention_s
        self._retention_due = 0.0  # time.monotonic() of the next look for expired views
        self.engine = open_engine(uri)
        create(self.engine)
        self._search = search_of(self.engine, model)
        self._lock = threading.Lock()
        self._mixed = False  # whether views of other models are stored
        self._revision = -1
        self._apply_retention()
        self._refresh()

    def close(self) -> None:
        """Close the connections."""
        self.engine.dispose()

    # Writes
    def add(
        self,
        embedding: np.ndarray,
        bbox: list[int],
        label: str | None = None,
        metadata: dict | None = None,
        crop: bytes | None = None,
        *,
        source: str | None = None,
        key: tuple[str, str] | None = None,
        deadline: float | None = None,
    ) -> StoredPerson:
        """Store a new person with one view: its ``(D,)`` embedding, box and ``source``;
        committed when this returns, and returned as committed. ``key``: ``(idempotency key,
        fingerprint of the request)``: a key stored before returns its person
        (IdempotencyConflict when the fingerprint differs). ``deadline`` (``time.monotonic()``):
        the write waits for locks and commits only before it, else it is rolled back and
        TimedOut raised. ValueError for metadata that cannot be stored as standard JSON and
        read back the same."""
        stored_metadata = _stored_json(metadata or {})
        person_id = uuid.uuid4().hex

        def identity(connection: sa.Connection, now: float) -> None:
            connection.execute(
                PERSONS.insert().values(person_id=person_id, label=label, metadata=stored_metadata, created=now)
            )

        return self._store_view(person_id, identity, embedding, bbox, crop, source, key, deadline)

    def add_view(
        self,
        person_id: str,
        embedding: np.ndarray,
        bbox: list[int],
        crop: bytes | None = None,
        *,
        source: str | None = None,
        key: tuple[str, str] | None = None,
        deadline: float | None = None,
    ) -> StoredPerson | None:
        """Give a stored person one more view (as :meth:`add`); the person with it, or None
        when there is no such person."""

        def identity(connection: sa.Connection, now: float) -> None:
            if (
                connection.execute(sa.select(PERSONS.c.person_id).where(PERSONS.c.person_id == person_id)).first()
                is None
            ):
                raise _NoPerson(person_id)

        try:
            return self._store_view(person_id, identity, embedding, bbox, crop, source, key, deadline)
        except _NoPerson:
            return None

    def _store_view(
        self,
        person_id: str,
        identity: Callable[[sa.Connection, float], None],
        embedding: np.ndarray,
        bbox: list[int],
        crop: bytes | None,
        source: str | None,
        key: tuple[str, str] | None,
        deadline: float | None,
    ) -> StoredPerson:
        """Store a view of ``person_id`` after ``identity`` (which creates or checks the person)
        in the same transaction; the person as committed."""
        self._apply_retention()
        self._check_model()
        vector = np.asarray(embedding, np.float32).reshape(-1)
        view_id = uuid.uuid4().hex
        stored: list[StoredPerson] = []

        def insert(connection: sa.Connection) -> None:
            now = time.time()
            if key is not None:
                self._remember_key(connection, key, person_id, view_id, now)
            identity(connection, now)
            connection.execute(
                VIEWS.insert().values(
                    view_id=view_id,
                    person_id=person_id,
                    model=self.model,
                    bbox=json.dumps([int(v) for v in bbox]),
                    source=source,
                    created=now,
                    embedding=embedding_value(connection, vector),
                    crop=crop,
                )
            )
            person = _person(connection, person_id)
            assert person is not None  # written in this transaction
            stored.append(person)

        try:
            revision = self._write(insert, deadline)
        except _AlreadyStored as already:
            return already.person
        except sa.exc.IntegrityError:
            if key is None:
                raise
            # The same key committed by a concurrent request in between: what it stored.
            with self.engine.connect() as connection:
                found = self._stored_under(connection, *key)
            if found is None:
                raise
            return found
        person = stored[0]
        self._settle(revision, lambda: self._search.added(view_id, person_id, vector, person.label, source))
        return person

    def _remember_key(
        self, connection: sa.Connection, key: tuple[str, str], person_id: str, view_id: str, now: float
    ) -> None:
        """Store an idempotency key with what it writes, or raise _AlreadyStored when it was stored before."""
        found = self._stored_under(connection, *key)
        if found is not None:
            raise _AlreadyStored(found)  # rolls the transaction back: nothing written
        connection.execute(KEYS.delete().where(KEYS.c.created < now - KEY_RETENTION_S))
        connection.execute(
            KEYS.insert().values(key=key[0], fingerprint=key[1], person_id=person_id, view_id=view_id, created=now)
        )

    def _stored_under(self, connection: sa.Connection, key: str, fingerprint: str) -> StoredPerson | None:
        """The person stored under an idempotency key, or None; IdempotencyConflict when the key
        came with another request."""
        found = connection.execute(sa.select(KEYS.c.fingerprint, KEYS.c.person_id).where(KEYS.c.key == key)).first()
        if found is None:
            return None
        if found.fingerprint != fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was used for another request: send a new key for a new one")
        return _person(connection, found.person_id)

    def delete(self, person_id: str) -> bool:
        """Remove, and erase, one person with its views; whether it was there."""
        removed = [False]

        def remove(connection: sa.Connection) -> None:
            removed[0] = connection.execute(PERSONS.delete().where(PERSONS.c.person_id == person_id)).rowcount > 0
            connection.execute(VIEWS.delete().where(VIEWS.c.person_id == person_id))
            connection.execute(KEYS.delete().where(KEYS.c.person_id == person_id))

        revision = self._write(remove)
        self._settle(revision, lambda: self._search.removed(person_id))
        self._erase_traces()
        return removed[0]

    def delete_view(self, person_id: str, view_id: str) -> tuple[bool, StoredPerson | None]:
        """Remove, and erase, one view of a person: ``(whether it was there, the person now)``;
        a person left without views is removed (None)."""
        removed, gone = [False], [False]

        def remove(connection: sa.Connection) -> None:
            mine = (VIEWS.c.view_id == view_id) & (VIEWS.c.person_id == person_id)
            removed[0] = connection.execute(VIEWS.delete().where(mine)).rowcount > 0
            connection.execute(KEYS.delete().where(KEYS.c.view_id == view_id))
            if _person(connection, person_id) is None:
                gone[0] = connection.execute(PERSONS.delete().where(PERSONS.c.person_id == person_id)).rowcount > 0
                connection.execute(KEYS.delete().where(KEYS.c.person_id == person_id))

        revision = self._write(remove)
        self._settle(revision, lambda: self._search.view_removed(view_id, person_id, gone[0]))
        self._erase_traces()
        return removed[0], self.get(person_id)

    def merge(self, person_id: str, other_id: str) -> StoredPerson | None:
        """Move every view of ``other_id`` to ``person_id`` and remove (and erase) ``other_id``,
        keeping ``person_id``'s label and metadata; the person as merged, or None when either is
        not in the gallery. ValueError for a person merged into itself."""
        if person_id == other_id:
            raise ValueError("a person cannot be merged into itself")

        def move(connection: sa.Connection) -> None:
            both = PERSONS.c.person_id.in_([person_id, other_id])
            if connection.execute(sa.select(sa.func.count()).select_from(PERSONS).where(both)).scalar_one() < 2:
                raise _NoPerson(other_id)
            connection.execute(VIEWS.update().where(VIEWS.c.person_id == other_id).values(person_id=person_id))
            connection.execute(KEYS.update().where(KEYS.c.person_id == other_id).values(person_id=person_id))
            connection.execute(PERSONS.delete().where(PERSONS.c.person_id == other_id))

        try:
            revision = self._write(move)
        except _NoPerson:
            return None
        self._settle(revision, lambda: self._search.merged(person_id, other_id))
        self._erase_traces()
        return self.get(person_id)

    def clear(self) -> int:
        """Remove, and erase, every person; how many there were."""
        count = [0]

        def remove(connection: sa.Connection) -> None:
            count[0] = connection.execute(PERSONS.delete()).rowcount
            connection.execute(VIEWS.delete())
            connection.execute(KEYS.delete())

        self._write(remove)
        self._reload_and_erase()
        return count[0]

    def update(self, person_id: str, changes: dict) -> StoredPerson | None:
        """Give a stored person a new ``label`` and/or ``metadata`` (the keys of ``changes``; a
        label of None removes it); the person as stored now, or None when there is no such
        person. ValueError for metadata that cannot be stored as standard JSON."""
        values = {key: changes[key] for key in ("label",) if key in changes}
        if "metadata" in changes:
            values["metadata"] = _stored_json(changes["metadata"])
        if values:
            statement = PERSONS.update().where(PERSONS.c.person_id == person_id).values(**values)
            revision = self._write(lambda connection: connection.execute(statement))
            if "label" in values:
                self._settle(revision, lambda: self._search.relabelled(person_id, values["label"]))
            else:
                self._settle(revision, lambda: None)
        return self.get(person_id)

    def _reload_and_erase(self) -> None:
        """After a change of many, or of views: reload the search's copy, then erase the traces."""
        with self._lock:
            self._revision = -1
        self._refresh()
        self._erase_traces()

    def _erase_traces(self) -> None:
        """After a delete, leave nothing of the deleted in the store's files. SQLite: the
        write-ahead log still holds the pages as they were before; a TRUNCATE checkpoint copies
        the zeroed pages into the file and empties the log (GalleryUnavailable when a reader
        keeps it from finishing, so that the caller knows; the delete itself stands). PostgreSQL
        keeps deleted rows in its pages until VACUUM reuses them, and in its own WAL: erasure
        there is the server's to configure."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            raise GalleryUnavailable("deleted, but a reader kept the journal from being emptied; retry")

    def expire(self, before: float) -> int:
        """Delete, and erase, every view stored before ``before`` (seconds since the epoch), and
        the persons left without views; how many views."""
        count = [0]
        expired = VIEWS.c.created < before

        def remove(connection: sa.Connection) -> None:
            connection.execute(KEYS.delete().where(KEYS.c.view_id.in_(sa.select(VIEWS.c.view_id).where(expired))))
            count[0] = connection.execute(VIEWS.delete().where(expired)).rowcount
            viewless = ~sa.exists().where(VIEWS.c.person_id == PERSONS.c.person_id)
            connection.execute(KEYS.delete().where(~KEYS.c.person_id.in_(sa.select(VIEWS.c.person_id))))
            connection.execute(PERSONS.delete().where(viewless))

        self._write(remove)
        if count[0]:
            self._reload_and_erase()
        return count[0]

    def _apply_retention(self) -> None:
        """Expire the views past ``retention_s``, when a look is due."""
        if self.retention_s is None or time.monotonic() < self._retention_due:
            return
        self._retention_due = time.monotonic() + min(RETENTION_CHECK_S, self.retention_s)
        self.expire(time.time() - self.retention_s)

    def replace_embedding(self, view_id: str, embedding: np.ndarray, model: str) -> None:
        """Give a stored view a new embedding from ``model`` (re-embedding a kept crop)."""
        vector = np.asarray(embedding, np.float32).reshape(-1)

        def change(connection: sa.Connection) -> None:
            values = {"embedding": embedding_value(connection, vector), "model": model}
            connection.execute(VIEWS.update().where(VIEWS.c.view_id == view_id).values(**values))

        self._write(change)
        # The search's copy is rebuilt at the next read (re-embedding is rare).
        with self._lock:
            self._revision = -1

    def _write(self, change: Callable[[sa.Connection], object], deadline: float | None = None) -> int:
        """Run ``change`` and increment the revision in one transaction; the new revision. With a
        ``deadline``, lock waits end at it and a write past it is rolled back (TimedOut)."""
        try:
            with self.engine.begin() as connection:
                self._bound_lock_waits(connection, deadline)
                change(connection)
                connection.execute(REVISION.update().values(value=REVISION.c.value + 1))
                revision = int(connection.execute(sa.select(REVISION.c.value)).scalar_one())
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimedOut("the gallery did not take the write in time; nothing was stored; retry")
                return revision
        except sa.exc.OperationalError as error:
            if deadline is not None and time.monotonic() >= deadline - 0.05:
                raise TimedOut("the gallery was busy with another writer; nothing was stored; retry") from error
            raise

    def _bound_lock_waits(self, connection: sa.Connection, deadline: float | None) -> None:
        """Make this transaction's lock waits end at ``deadline`` (SQLite's busy timeout,
        PostgreSQL's lock and statement timeouts); without one, SQLite's default wait."""
        wait_s = SQLITE_BUSY_TIMEOUT_S if deadline is None else max(deadline - time.monotonic(), 0.001)
        if self.engine.dialect.name == "sqlite":
            # Set on every write: the pooled connection keeps it for the next one.
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        elif deadline is not None:
            for setting in ("lock_timeout", "statement_timeout"):
                connection.exec_driver_sql(f"SET LOCAL {setting} = {max(int(wait_s * 1000), 1)}")

    def _settle(self, revision: int, apply: Callable[[], None]) -> None:
        """Apply this process's own change to the search when nothing else changed the gallery
        in between; else reload it."""
        with self._lock:
            if revision == self._revision + 1:
                apply()
                self._revision = revision
                return
        self._refresh()

    # Reads
    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[Found]]:
        """Per ``(Q, D)`` query, up to ``top_k`` persons of at least ``threshold`` cosine
        similarity by their best view, best first, each naming that view."""
        self._apply_retention()
        self._refresh()
        self._check_model()
        return self._search.search(np.asarray(queries, np.float32), top_k, threshold)

    def get(self, person_id: str) -> StoredPerson | None:
        """One stored person, or None."""
        with self.engine.connect() as connection:
            return _person(connection, person_id)

    def page(self, offset: int, limit: int) -> tuple[list[StoredPerson], int]:
        """Stored persons oldest first, ``limit`` from ``offset``, and how many there are."""
        self._apply_retention()
        query = sa.select(PERSONS).order_by(PERSONS.c.created, PERSONS.c.person_id).offset(offset).limit(limit)
        with self.engine.connect() as connection:
            persons = _persons(connection, connection.execute(query).all())
            total = connection.execute(sa.select(sa.func.count()).select_from(PERSONS)).scalar_one()
        return persons, int(total)

    def crop(self, person_id: str, view_id: str) -> bytes | None:
        """The kept crop (JPEG) of one view of a person, or None."""
        mine = (VIEWS.c.view_id == view_id) & (VIEWS.c.person_id == person_id)
        with self.engine.connect() as connection:
            return connection.execute(sa.select(VIEWS.c.crop).where(mine)).scalar()

    def crops(self) -> Iterator[tuple[str, str, bytes]]:
        """``(view_id, model, crop JPEG)`` of every view whose crop was kept."""
        query = sa.select(VIEWS.c.view_id, VIEWS.c.model, VIEWS.c.crop).where(VIEWS.c.crop.is_not(None))
        with self.engine.connect() as connection:
            yield from ((row.view_id, row.model, row.crop) for row in connection.execute(query).all())

    def __len__(self) -> int:
        """Persons searched, as of the last read (a search reads first)."""
        return self._search.size()

    def counts(self) -> tuple[int, int]:
        """``(persons with views of this gallery's model, persons with views of other models)``."""
        persons = sa.func.count(sa.distinct(VIEWS.c.person_id))
        with self.engine.connect() as connection:
            mine = connection.execute(sa.select(persons).where(VIEWS.c.model == self.model)).scalar_one()
            others = connection.execute(sa.select(persons).where(VIEWS.c.model != self.model)).scalar_one()
        return int(mine), int(others)

    def _check_model(self) -> None:
        if not self._mixed:
            return
        with self.engine.connect() as connection:
            other = VIEWS.c.model != self.model
            count = connection.execute(sa.select(sa.func.count(sa.distinct(VIEWS.c.person_id))).where(other)).scalar()
            models = ", ".join(connection.execute(sa.select(VIEWS.c.model).where(other).distinct().limit(3)).scalars())
        raise GalleryModelMismatch(
            f"the gallery holds {count} persons embedded by {models}, but this service embeds with"
            f" {self.model}: embeddings of different models are never compared. Re-enrol them, or run"
            " `reid gallery reembed` (re-embeds the views whose crops were kept), or delete them"
        )

    def _refresh(self) -> None:
        """Take the changes of another writer: whether other models' views are stored (two index
        lookups, however large the gallery), and the search's copy."""
        with self.engine.connect() as connection:
            revision = int(connection.execute(sa.select(REVISION.c.value)).scalar_one())
            with self._lock:
                if revision == self._revision:
                    return
            mixed = any(
                connection.execute(sa.select(VIEWS.c.model).where(other).limit(1)).first() is not None
                for other in (VIEWS.c.model < self.model, VIEWS.c.model > self.model)
            )
            self._search.reload(connection)
        with self._lock:
            self._mixed, self._revision = mixed, revision
