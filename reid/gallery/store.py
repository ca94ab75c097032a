"""A persistent gallery of people: per person an embedding, its box, a label, free metadata, the
embedder's tag and the time, and (optionally) the crop it came from.

One code path over SQLAlchemy Core, two engines: SQLite in a file (the default, no server) and
PostgreSQL (a server that several replicas share) when ``REID_GALLERY_URI`` is a
``postgresql+psycopg://`` URL. A write is committed (SQLite: WAL, ``synchronous=FULL``) before
it returns. Search is exact cosine similarity over the process's in-memory copy of the
embeddings (:class:`reid.gallery.vectors.VectorIndex`), kept current through a revision counter
that every write increments in its own transaction: a process that sees a revision it did not
make reloads the embeddings before it searches.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from reid.errors import GalleryModelMismatch, GalleryUnavailable, IdempotencyConflict, TimedOut
from reid.gallery.vectors import Hit, VectorIndex

_schema = sa.MetaData()
PERSONS = sa.Table(
    "reid_gallery_persons",
    _schema,
    sa.Column("person_id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("label", sa.String(200)),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("bbox", sa.String(80), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.Column("crop", sa.LargeBinary),
)
REVISION = sa.Table(
    "reid_gallery_revision",
    _schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)
# Enrolments by idempotency key: a client retrying with the same key gets the person stored
# the first time, never a second copy. Keys are forgotten after KEY_RETENTION_S.
ENROLMENTS = sa.Table(
    "reid_gallery_enrolments",
    _schema,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
)
KEY_RETENTION_S = 24 * 3600
RETENTION_CHECK_S = 3600.0  # how often, at most, persons past the retention are looked for
SQLITE_BUSY_TIMEOUT_S = 30.0  # a write without a deadline waits this long for another writer
# An entry as read back: every column but the embedding, and whether a crop was kept.
_ENTRIES = sa.select(
    *(c for c in PERSONS.c if c.name not in ("embedding", "crop")), PERSONS.c.crop.is_not(None).label("has_crop")
)


@dataclass(frozen=True)
class StoredPerson:
    """One gallery entry, without its embedding."""

    person_id: str
    model: str
    label: str | None
    metadata: dict
    bbox: list[int]
    created: float  # seconds since the epoch, UTC
    has_crop: bool


def _stored_json(metadata: dict) -> str:
    """Metadata serialised before a write, as it will be read back: what cannot round-trip
    (NaN, infinities, lone surrogates) is refused here, with a ValueError."""
    text = json.dumps(metadata, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    return text


def _entry(row: sa.Row) -> StoredPerson:
    return StoredPerson(
        person_id=row.person_id,
        model=row.model,
        label=row.label,
        metadata=json.loads(row.metadata),
        bbox=json.loads(row.bbox),
        created=row.created,
        has_crop=bool(row.has_crop),
    )


class _AlreadyStored(Exception):
    """An enrolment's idempotency key was stored before, with ``person``."""

    def __init__(self, person: StoredPerson) -> None:
        super().__init__(person.person_id)
        self.person = person


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
    if not {PERSONS.name, REVISION.name} <= tables:
        raise GalleryUnavailable(f"{path} is a database but not a ReID gallery (tables: {sorted(tables)[:5]})")


class Gallery:
    """The gallery of one embedder (its tag: ``model``): add, search, read and delete persons.

    Entries embedded by another model are kept, listed and deletable, but while any remain,
    adding and searching raise GalleryModelMismatch: embeddings of different models are never
    compared. Thread-safe.
    """

    def __init__(self, uri: str, model: str, retention_s: float | None = None) -> None:
        self.uri = redacted(uri)
        self.model = model
        self.retention_s = retention_s
        self._retention_due = 0.0  # time.monotonic() of the next look for expired persons
        self.engine = open_engine(uri)
        _schema.create_all(self.engine)
        with self.engine.begin() as connection:
            if connection.execute(sa.select(REVISION.c.value)).scalar() is None:
                connection.execute(REVISION.insert().values(id=1, value=0))
        self._lock = threading.Lock()
        self._index = VectorIndex()
        self._labels: dict[str, str | None] = {}
        self._others = 0  # entries of other models
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
        key: tuple[str, str] | None = None,
        deadline: float | None = None,
    ) -> StoredPerson:
        """Store one person's ``(D,)`` embedding; committed when this returns, and returned as
        committed. ``key``: ``(idempotency key, fingerprint of the request)``: a key stored
        before returns its person (IdempotencyConflict when the fingerprint differs).
        ``deadline`` (``time.monotonic()``): the write waits for locks and commits only before
        it, else it is rolled back and TimedOut raised. ValueError for metadata that cannot be
        stored as standard JSON and read back the same."""
        self._apply_retention()
        self._check_model()
        vector = np.asarray(embedding, np.float32).reshape(-1)
        stored_metadata = _stored_json(metadata or {})
        person = StoredPerson(
            person_id=uuid.uuid4().hex,
            model=self.model,
            label=label,
            metadata=json.loads(stored_metadata),
            bbox=[int(v) for v in bbox],
            created=time.time(),
            has_crop=crop is not None,
        )
        row = {
            "person_id": person.person_id,
            "model": person.model,
            "label": label,
            "metadata": stored_metadata,
            "bbox": json.dumps(person.bbox),
            "created": person.created,
            "embedding": vector.tobytes(),
            "crop": crop,
        }

        def insert(connection: sa.Connection) -> None:
            if key is not None:
                found = self._enrolled(connection, *key)
                if found is not None:
                    raise _AlreadyStored(found)  # rolls the transaction back: nothing written
                connection.execute(ENROLMENTS.delete().where(ENROLMENTS.c.created < person.created - KEY_RETENTION_S))
                connection.execute(
                    ENROLMENTS.insert().values(
                        key=key[0], fingerprint=key[1], person_id=person.person_id, created=person.created
                    )
                )
            connection.execute(PERSONS.insert().values(**row))

        try:
            revision = self._write(insert, deadline)
        except _AlreadyStored as stored:
            return stored.person
        except sa.exc.IntegrityError:
            if key is None:
                raise
            # The same key committed by a concurrent request in between: its person.
            with self.engine.connect() as connection:
                found = self._enrolled(connection, *key)
            if found is None:
                raise
            return found

        def apply() -> None:
            self._index.add(person.person_id, vector)
            self._labels[person.person_id] = label

        self._settle(revision, apply)
        return person

    def _enrolled(self, connection: sa.Connection, key: str, fingerprint: str) -> StoredPerson | None:
        """The person stored under an idempotency key, or None; IdempotencyConflict when the key
        came with another request."""
        found = connection.execute(
            sa.select(ENROLMENTS.c.fingerprint, ENROLMENTS.c.person_id).where(ENROLMENTS.c.key == key)
        ).first()
        if found is None:
            return None
        if found.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for another enrolment: send a new key for a new enrolment"
            )
        row = connection.execute(_ENTRIES.where(PERSONS.c.person_id == found.person_id)).first()
        return None if row is None else _entry(row)

    def delete(self, person_id: str) -> bool:
        """Remove one person; whether it was there."""
        removed = [False]

        def remove(connection: sa.Connection) -> None:
            removed[0] = connection.execute(PERSONS.delete().where(PERSONS.c.person_id == person_id)).rowcount > 0
            connection.execute(ENROLMENTS.delete().where(ENROLMENTS.c.person_id == person_id))

        revision = self._write(remove)
        self._settle(revision, lambda: self._forget(person_id))
        self._erase_traces()
        return removed[0]

    def clear(self) -> int:
        """Remove every person; how many there were."""
        count = [0]

        def remove(connection: sa.Connection) -> None:
            count[0] = connection.execute(PERSONS.delete()).rowcount
            connection.execute(ENROLMENTS.delete())

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

            def apply() -> None:
                if "label" in values and person_id in self._labels:
                    self._labels[person_id] = values["label"]

            self._settle(revision, apply)
        return self.get(person_id)

    def _reload_and_erase(self) -> None:
        """After a delete of many: reload the in-memory copy, then erase the traces."""
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

    def expire(self, enrolled_before: float) -> int:
        """Delete, and erase, every person enrolled before ``enrolled_before`` (seconds since the
        epoch); how many."""
        count = [0]
        expired = PERSONS.c.created < enrolled_before

        def remove(connection: sa.Connection) -> None:
            gone = sa.select(PERSONS.c.person_id).where(expired)
            connection.execute(ENROLMENTS.delete().where(ENROLMENTS.c.person_id.in_(gone)))
            count[0] = connection.execute(PERSONS.delete().where(expired)).rowcount

        self._write(remove)
        if count[0]:
            self._reload_and_erase()
        return count[0]

    def _apply_retention(self) -> None:
        """Expire the persons past ``retention_s``, when a look is due."""
        if self.retention_s is None or time.monotonic() < self._retention_due:
            return
        self._retention_due = time.monotonic() + min(RETENTION_CHECK_S, self.retention_s)
        self.expire(time.time() - self.retention_s)

    def replace_embedding(self, person_id: str, embedding: np.ndarray, model: str) -> None:
        """Give a stored person a new embedding from ``model`` (re-embedding a kept crop)."""
        vector = np.asarray(embedding, np.float32).reshape(-1)
        values = {"embedding": vector.tobytes(), "model": model}
        change = PERSONS.update().where(PERSONS.c.person_id == person_id).values(**values)
        self._write(lambda connection: connection.execute(change))
        # The in-memory copy is rebuilt at the next read (re-embedding is rare).
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
        """Apply this process's own change to the in-memory copy when nothing else changed the
        gallery in between; else reload it."""
        with self._lock:
            if revision == self._revision + 1:
                apply()
                self._revision = revision
                return
        self._refresh()

    def _forget(self, person_id: str) -> None:
        self._index.remove(person_id)
        self._labels.pop(person_id, None)

    # Reads
    def search(self, queries: np.ndarray, top_k: int, threshold: float) -> list[list[tuple[str, str | None, float]]]:
        """Per ``(Q, D)`` query, up to ``top_k`` ``(person_id, label, similarity)`` of at least
        ``threshold``, best first."""
        self._apply_retention()
        self._refresh()
        self._check_model()
        with self._lock:
            hits: list[list[Hit]] = self._index.search(np.asarray(queries, np.float32), top_k, threshold)
            return [[(hit.key, self._labels.get(hit.key), hit.similarity) for hit in found] for found in hits]

    def get(self, person_id: str) -> StoredPerson | None:
        """One stored person, or None."""
        query = _ENTRIES.where(PERSONS.c.person_id == person_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _entry(row)

    def page(self, offset: int, limit: int) -> tuple[list[StoredPerson], int]:
        """Stored persons oldest first, ``limit`` from ``offset``, and how many there are."""
        self._apply_retention()
        query = _ENTRIES.order_by(PERSONS.c.created, PERSONS.c.person_id).offset(offset).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            total = connection.execute(sa.select(sa.func.count()).select_from(PERSONS)).scalar_one()
        return [_entry(row) for row in rows], int(total)

    def crops(self) -> Iterator[tuple[str, str, bytes]]:
        """``(person_id, model, crop JPEG)`` of every person whose crop was kept."""
        query = sa.select(PERSONS.c.person_id, PERSONS.c.model, PERSONS.c.crop).where(PERSONS.c.crop.is_not(None))
        with self.engine.connect() as connection:
            yield from ((row.person_id, row.model, row.crop) for row in connection.execute(query).all())

    def __len__(self) -> int:
        """Persons of this gallery's model as of the last read (a search reads first)."""
        return len(self._index)

    def counts(self) -> tuple[int, int]:
        """``(entries of this gallery's model, entries of other models)``."""
        self._refresh()
        with self._lock:
            return len(self._index), self._others

    def _check_model(self) -> None:
        if self._others:
            with self.engine.connect() as connection:
                models = connection.execute(
                    sa.select(PERSONS.c.model).where(PERSONS.c.model != self.model).distinct().limit(3)
                ).scalars()
                others = ", ".join(models)
            raise GalleryModelMismatch(
                f"the gallery holds {self._others} persons embedded by {others}, but this service embeds with"
                f" {self.model}: embeddings of different models are never compared. Re-enrol them, or run"
                " `reid gallery reembed` (re-embeds the persons whose crops were kept), or delete them"
            )

    def _refresh(self) -> None:
        """Reload the in-memory embeddings if the gallery changed under another writer."""
        with self.engine.connect() as connection:
            revision = int(connection.execute(sa.select(REVISION.c.value)).scalar_one())
            with self._lock:
                if revision == self._revision:
                    return
            others = connection.execute(
                sa.select(sa.func.count()).select_from(PERSONS).where(PERSONS.c.model != self.model)
            ).scalar_one()
            keys: list[str] = []
            labels: dict[str, str | None] = {}
            chunks = []
            query = sa.select(PERSONS.c.person_id, PERSONS.c.label, PERSONS.c.embedding).where(
                PERSONS.c.model == self.model
            )
            # In parts, so that reading 100,000 embeddings never holds them all as Python objects.
            for part in connection.execution_options(yield_per=5000).execute(query).partitions():
                keys += [row.person_id for row in part]
                labels.update((row.person_id, row.label) for row in part)
                data = b"".join(row.embedding for row in part)
                chunks.append(np.frombuffer(data, np.float32).reshape(len(part), -1))
        index = VectorIndex.of(keys, np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32))
        with self._lock:
            self._index, self._labels = index, labels
            self._others, self._revision = int(others), revision
