"""The gallery's tables, one schema on both engines, and the upgrade of a gallery written before
persons had several views.

A person (identity: label, metadata) has one or more views (embedding, box, source, time, crop if
kept). On PostgreSQL a view's embedding is a pgvector ``vector`` (searched by an HNSW index, see
:mod:`reid.gallery.search`); on SQLite it is float32 bytes.
"""

from __future__ import annotations

import uuid

import numpy as np
import sqlalchemy as sa
from pgvector.sqlalchemy import VECTOR

from reid.errors import GalleryUnavailable

MIN_PGVECTOR = (0, 8)  # hnsw.iterative_scan: a threshold applied inside the index scan

_schema = sa.MetaData()
PERSONS = sa.Table(
    "reid_gallery_identities",
    _schema,
    sa.Column("person_id", sa.String(32), primary_key=True),
    sa.Column("label", sa.String(200)),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False, index=True),
)
VIEWS = sa.Table(
    "reid_gallery_views",
    _schema,
    sa.Column("view_id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("bbox", sa.String(80), nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("embedding", sa.LargeBinary().with_variant(VECTOR(), "postgresql"), nullable=False),
    sa.Column("crop", sa.LargeBinary),
)
REVISION = sa.Table(
    "reid_gallery_revision",
    _schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)
# Writes by idempotency key: a client retrying with the same key gets what was stored the first
# time (the person, and the view it added), never a second copy.
KEYS = sa.Table(
    "reid_gallery_keys",
    _schema,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("view_id", sa.String(32), nullable=False, index=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
)
# Before several views per person: one table of persons, each with its one embedding.
LEGACY_PERSONS = "reid_gallery_persons"
LEGACY_KEYS = "reid_gallery_enrolments"
TABLES = frozenset({PERSONS.name, VIEWS.name, REVISION.name})


def create(engine: sa.Engine) -> None:
    """The gallery's tables (and on PostgreSQL the pgvector extension), created where missing; a
    gallery of the one-view schema upgraded in place, in one transaction."""
    if engine.dialect.name == "postgresql":
        _require_pgvector(engine)
    _schema.create_all(engine)
    with engine.begin() as connection:
        if connection.execute(sa.select(REVISION.c.value)).scalar() is None:
            connection.execute(REVISION.insert().values(id=1, value=0))
        if LEGACY_PERSONS in sa.inspect(connection).get_table_names():
            _upgrade(connection)


def is_gallery(tables: set[str]) -> bool:
    """Whether a database's tables are a gallery's, of this schema or the one before."""
    return TABLES <= tables or {LEGACY_PERSONS, REVISION.name} <= tables


def _require_pgvector(engine: sa.Engine) -> None:
    """GalleryUnavailable naming the problem when the server lacks pgvector 0.8 or newer (it is
    created in the database when the server has it and the user may)."""
    url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
            version = connection.exec_driver_sql(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).scalar()
    except sa.exc.DBAPIError as error:
        raise GalleryUnavailable(
            f"the PostgreSQL server at {url} lacks the pgvector extension ({error.orig}): install pgvector"
            f" {'.'.join(map(str, MIN_PGVECTOR))} or newer on the server (scripts/pgvector.sh does it on Debian),"
            " or have its owner run CREATE EXTENSION vector in this database"
        ) from error
    found = tuple(int(part) for part in str(version).split(".")[:2])
    if found < MIN_PGVECTOR:
        raise GalleryUnavailable(
            f"the PostgreSQL server at {url} has pgvector {version}; the gallery needs"
            f" {'.'.join(map(str, MIN_PGVECTOR))} or newer (ALTER EXTENSION vector UPDATE after upgrading it)"
        )


def embedding_value(connection: sa.Connection, vector: np.ndarray) -> object:
    """A view's ``(D,)`` embedding as its column stores it on this engine."""
    vector = np.asarray(vector, np.float32).reshape(-1)
    return vector if connection.dialect.name == "postgresql" else vector.tobytes()


def embedding_array(value: object) -> np.ndarray:
    """A stored embedding as a ``(D,)`` float32 array."""
    if isinstance(value, bytes | memoryview):
        return np.frombuffer(value, np.float32)
    return np.asarray(value, np.float32)


def _upgrade(connection: sa.Connection) -> None:
    """Each one-view person becomes a person with one view; idempotency keys keep their person."""
    legacy = sa.Table(LEGACY_PERSONS, sa.MetaData(), autoload_with=connection)
    view_of: dict[str, str] = {}
    rows = connection.execute(sa.select(legacy)).mappings().all()
    for start in range(0, len(rows), 5000):
        part = rows[start : start + 5000]
        view_of.update((row["person_id"], uuid.uuid4().hex) for row in part)
        connection.execute(
            PERSONS.insert(),
            [{key: row[key] for key in ("person_id", "label", "metadata", "created")} for row in part],
        )
        connection.execute(
            VIEWS.insert(),
            [
                {
                    **{key: row[key] for key in ("person_id", "model", "bbox", "created", "crop")},
                    "view_id": view_of[row["person_id"]],
                    "source": None,
                    "embedding": embedding_value(connection, embedding_array(row["embedding"])),
                }
                for row in part
            ],
        )
    if LEGACY_KEYS in sa.inspect(connection).get_table_names():
        keys = sa.Table(LEGACY_KEYS, sa.MetaData(), autoload_with=connection)
        kept = [
            {**row, "view_id": view_of[row["person_id"]]}
            for row in connection.execute(sa.select(keys)).mappings()
            if row["person_id"] in view_of
        ]
        if kept:
            connection.execute(KEYS.insert(), kept)
        keys.drop(connection)
    legacy.drop(connection)
