"""Database plumbing: the declarative base, engines for SQLite and PostgreSQL, the unit of work."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""Free-form JSON: JSONB on PostgreSQL (indexable), JSON text on SQLite."""


AutoIncrementId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit auto-increment key; SQLite only auto-increments a column typed exactly INTEGER."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases (SQLite drops the zone on the way in)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, aware and in UTC."""
    return datetime.now(UTC)


def as_aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's datetime as aware UTC (aggregates lose the column type on SQLite)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every context's tables; one metadata so Alembic sees them all."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class unicode_lower(GenericFunction[str]):  # noqa: N801 - SQL functions are lower case
    """``lower()`` of Unicode text on both databases; SQLite's own folds ASCII letters only."""

    type = String()
    name = "unicode_lower"
    inherit_cache = True


@compiles(unicode_lower)
def _lower_elsewhere(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_on_sqlite(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


_SQLITE_LOWER = "storekeeper_lower"


def _python_lower(value: object) -> object:
    # str.lower, not casefold: the same mapping as PostgreSQL's lower() (ß stays ß).
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine) -> None:
    """WAL, durable-on-process-crash commits, and BEGIN modes under our control.

    pysqlite's own transaction handling starts transactions lazily and cannot issue
    BEGIN IMMEDIATE; writers that start DEFERRED and later upgrade can fail with SQLITE_BUSY
    instead of waiting, so we take over BEGIN (SQLAlchemy's documented recipe).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only power loss can lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        dbapi_connection.create_function(_SQLITE_LOWER, 1, _python_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "NONE":  # NONE: autocommit reads, each statement its own snapshot
            conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One database: its engine, read sessions, and the unit of work that commits writes."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.pool_size = pool_size
        writer: Engine
        reader: Engine
        if self.is_sqlite:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(self.engine)
            writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            reader = self.engine.execution_options(sqlite_begin="NONE")
        else:
            # No pre-ping: it costs a round trip per checkout. A dropped connection fails the
            # request using it, invalidates the pool, and later checkouts reconnect.
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
            )
            writer = self.engine
            reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # SQLite allows one writer at a time; queueing this process's writers on a lock is
        # fairer and much faster than letting them spin in SQLite's busy handler.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        )
        # Reads run without BEGIN/ROLLBACK (autocommit): a read that needs several statements
        # to agree must use ``transaction()``. That saves two round trips per read.
        self._reader_engine = reader
        self._readers = sessionmaker(reader, expire_on_commit=False)
        self._writers = sessionmaker(writer, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work: everything done in the block commits together, or nothing does."""
        with self._write_lock, self._writers() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session; it never commits.

        Closing (not rolling back) ends the transaction without expiring loaded objects, so
        what was read stays readable after the block.
        """
        with self._readers() as session:
            yield session

    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[Connection]:
        """A read-only transaction whose statements all see one snapshot of the database.

        ``reading()`` runs each statement on its own (autocommit); a reader that must copy
        several tables as of one moment, and name that moment (the sync snapshot, with the
        outbox position it is valid at), needs this instead: SQLite ``BEGIN DEFERRED`` (the
        first read fixes the WAL snapshot), PostgreSQL ``REPEATABLE READ READ ONLY``.
        """
        engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        )
        with engine.connect() as connection, connection.begin() as transaction:
            try:
                yield connection
            finally:
                transaction.rollback()

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a Core ``query`` from async code without blocking the event loop for long.

        On SQLite a read is a local file lookup of microseconds, cheaper than handing it to a
        thread, so it runs inline; on PostgreSQL it is a network round trip and goes to the
        thread pool (bench W1 measured both).
        """
        if self.is_sqlite:
            return self._read_now(query)
        return await anyio.to_thread.run_sync(self._read_now, query)

    def _read_now(self, query: Callable[[Connection], T]) -> T:
        # A bare connection, not an ORM session: a session costs more than a point read.
        with self._reader_engine.connect() as connection:
            return query(connection)

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file now, without the write lock
        (``PASSIVE``: it skips pages readers still use); nothing on PostgreSQL.

        A bulk writer calls it between its transactions: otherwise the commit that grows the
        log past its automatic checkpoint (1,000 pages) copies it, with the write lock still
        held (bench W8: the longest of an import's batches, up to 378 ms, were such commits).
        """
        if self.is_sqlite:
            with self._reader_engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def plan_each_time(session: Session) -> None:
    """Make PostgreSQL plan each statement of this transaction for its parameters.

    psycopg prepares a statement run five times on a connection, and PostgreSQL may then keep
    one generic plan for it, costed for the table as it was then: a bulk writer whose lookups
    by key began on a nearly empty table goes on scanning it whole as it grows (bench W8: a
    batch of 100 SKUs looked up by ``IN`` took 10 ms at 3,000 products and grew with each
    batch). Planning each time costs little next to such a batch. SQLite plans
    every statement afresh: nothing to do there.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


_ARRAY_ROWS = 10
"""Fewer rows than this (an order's few events) go by a plain INSERT on PostgreSQL: arrays
and ``unnest`` pay off for a batch, not for a row or two."""


def insert_many(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts: bool = False,
    computed: Mapping[str, str] | None = None,
) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` in one statement's time.

    An import writes 100,000s of rows this way, and the generic executemany costs per row
    where it need not (bench W8): SQLAlchemy builds and converts every parameter of every row,
    and psycopg's executemany runs one INSERT per row on the server. So SQLite gets one
    executemany straight through the driver, each column converted to its stored form once
    when every row holds the same object (a batch's ``now``); PostgreSQL gets one
    ``INSERT … SELECT * FROM unnest(<one array per column>)``. Columns left out get their
    scalar Python default (one with a computed default must be given); ``computed`` adds
    columns as SQL expressions (PostgreSQL only: the writing transaction's id). With
    ``ignore_conflicts`` a row whose key exists already is skipped.
    """
    if not rows:
        return
    dialect = connection.dialect
    names = list(rows[0])
    values: list[list[Any]] = [[row[name] for row in rows] for name in names]
    for column in table.columns:
        if column.name in names or column.name in (computed or {}) or column.default is None:
            continue
        if not isinstance(column.default, ScalarElementColumnDefault):
            raise ValueError(f"{table.name}.{column.name} has a computed default: give it")
        names.append(column.name)
        values.append([column.default.arg] * len(rows))
    quote = dialect.identifier_preparer.quote
    targets = [*names, *(computed or {})]
    # Names from the table's metadata, quoted; values are all bound parameters.
    into = f"{quote(table.name)} ({', '.join(quote(n) for n in targets)})"
    conflicts = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if dialect.name == "postgresql" and len(rows) < _ARRAY_ROWS:
        statement = (
            insert_ignoring_conflicts(dialect.name, table) if ignore_conflicts else insert(table)
        )
        if computed:
            statement = statement.values(
                {name: literal_column(sql) for name, sql in computed.items()}
            )
        connection.execute(statement, list(rows))
        return
    if dialect.name == "postgresql":
        arrays, casts = [], []
        for name, column_values in zip(names, values, strict=True):
            kind = table.c[name].type
            if isinstance(kind, JSON):  # as text, cast by the server: one array of JSON texts
                arrays.append([None if v is None else json.dumps(v) for v in column_values])
                casts.append("%s::text[]::jsonb[]")
                continue
            convert = kind._cached_bind_processor(dialect)
            arrays.append([convert(v) for v in column_values] if convert else column_values)
            casts.append(f"%s::{kind.compile(dialect=dialect)}[]")
        extra = "".join(f", {expression}" for expression in (computed or {}).values())
        sql = f"INSERT INTO {into} SELECT u.*{extra} FROM unnest({', '.join(casts)}) AS u"  # noqa: S608
        # psycopg's own cursor, for binary parameters: its text form escapes every array
        # element with a regular expression, which cost more than the INSERT itself.
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(sql + conflicts, tuple(arrays), binary=True)
        return
    if computed:
        raise ValueError("computed columns are for PostgreSQL only")
    columns: list[list[Any]] = []
    for name, column_values in zip(names, values, strict=True):
        convert = table.c[name].type._cached_bind_processor(dialect)
        first = column_values[0]
        if all(value is first for value in column_values):
            columns.append([convert(first) if convert else first] * len(rows))
        else:
            columns.append([convert(v) for v in column_values] if convert else column_values)
    sql = f"INSERT INTO {into} VALUES ({', '.join('?' * len(names))}){conflicts}"  # noqa: S608
    connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def insert_ignoring_conflicts(dialect: str, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for ``table`` on SQLite or PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


_ON_ROLLBACK = "storekeeper.on_rollback"
_LISTENING = threading.Lock()


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Call ``undo`` if ``session``'s transaction rolls back (never if it commits).

    For effects outside the database made inside a transaction (another service's reservation):
    the transaction's fate decides whether they must be undone.
    """
    with _LISTENING:  # registered on first use, once, for every session
        if not event.contains(Session, "after_rollback", _run_undos):
            event.listen(Session, "after_rollback", _run_undos)
            event.listen(Session, "after_commit", _forget_undos)
    session.info.setdefault(_ON_ROLLBACK, []).append(undo)


def _run_undos(session: Session) -> None:
    for undo in reversed(session.info.pop(_ON_ROLLBACK, [])):
        undo()


def _forget_undos(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
