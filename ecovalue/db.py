"""Database plumbing shared by every package: the declarative base, column types, engines, the
per-request session, and the statements whose SQLite and PostgreSQL forms differ (bulk inserts,
inserts that skip conflicting rows), so that no domain package branches on the dialect.

Services receive a `Session` as an argument and never commit; whoever owns the unit of work (the
request, a CLI command, a test) commits once, so one operation is one transaction.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from ecovalue import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: the project clock's `utcnow`, importable from here as services always have
utcnow = clock.utcnow


class Base(DeclarativeBase):
    """Declarative base of every model; constraint names are deterministic so that Alembic's
    batch mode on SQLite can find them."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    #: every model here maps one `sa.Table` (no mapping to a join or a select), so `Model.__table__`
    #: is typed as one: `Model.__table__.insert()`, `.c`, `bulk_insert_records(s, Model.__table__)`
    #: type-check without a cast (SQLAlchemy types it as the wider `FromClause`)
    __table__: ClassVar[sa.Table]


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite as on PostgreSQL.

    SQLite has no time zones, so the value is stored as naive UTC and made aware on the way out;
    a naive datetime handed in is a programming error and refused.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: JSON document column: `json` on PostgreSQL (text kept as written), JSON text on SQLite;
#: Python None is SQL NULL.
JSONDocument = sa.JSON(none_as_null=True)

#: the largest value a 64-bit signed integer column holds (ids, amounts, running totals): a
#: larger id names no row, and a larger number would overflow the database driver
INT64_MAX = 2**63 - 1

#: 64-bit integer column; on SQLite plain INTEGER (64-bit there too), so that a primary key
#: is still an auto-incrementing rowid alias and foreign keys match it.
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BigIntPK = BigInt


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Engine for `url` with the settings this project relies on.

    SQLite: foreign keys on, WAL journal, a busy timeout, and transactions opened by us: a plain
    `BEGIN` for readers, `BEGIN IMMEDIATE` for writers (see `write_session`), so two writers queue
    up instead of failing half-way with "database is locked" when one upgrades its read lock.
    On a database file, writers also queue in `WriterQueue` before their BEGIN IMMEDIATE.
    A server database: a pooled connection idle more than `ping_after_idle` seconds is pinged
    before it is handed out (`_ping_idle_connections`), instead of every one on every checkout.
    """
    ping_after_idle = kwargs.pop("ping_after_idle", PING_AFTER_IDLE_SECONDS)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).update({"timeout": 30, "check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url and url != "sqlite://":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        database = sa.engine.make_url(url).database
        queue = WriterQueue(f"{database}-writers.lock") \
            if database and database != ":memory:" and not database.startswith("file:") \
            else None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            dbapi_connection = conn.connection.dbapi_connection
            if queue is not None and mode == "IMMEDIATE":
                queue.acquire(dbapi_connection)
            try:
                conn.exec_driver_sql(f"BEGIN {mode}".strip())
            except BaseException:
                if queue is not None:
                    queue.release(dbapi_connection)
                raise

        if queue is not None:
            queue.release_after(engine.dialect)
        return engine
    engine = sa.create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine, ping_after_idle)
    return engine


#: a pooled server connection idle longer than this is pinged before it is handed out
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine: Engine, after: float) -> None:
    """Hand out a pooled connection without pinging it if it was in use less than `after`
    seconds ago, else ping it first (SQLAlchemy's `pool_pre_ping` pings on every checkout: a
    round trip on every request, though under load a connection is checked in and out
    within milliseconds). A ping that fails raises DisconnectionError, which makes the pool
    discard that connection and hand out a fresh one (SQLAlchemy's documented pessimistic
    handling). What this leaves is a connection that died less than `after` seconds after
    its last use (the server restarted or killed it in that window): its request's first
    statement fails like any database error (nothing was written), SQLAlchemy recognises
    the disconnect and invalidates the whole pool, so that the worker's next requests
    connect afresh. The connections that go stale in the usual ways (a server restart
    while the service is quiet, a firewall or pooler dropping idle connections after
    minutes) are pinged."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["ecovalue.checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("ecovalue.checked_in")
        if since is None or time.monotonic() - since <= after:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:  # pragma: no cover - the dialects raise rather than answer False
            raise sa.exc.DisconnectionError("stale pooled connection")


class WriterQueue:
    """SQLite writers queue for the database lock first come, first served, instead of
    polling it: a writer takes an exclusive `flock` on a lock file next to the database
    before its BEGIN IMMEDIATE and lets it go right after its COMMIT or ROLLBACK. SQLite's
    own busy handler, which is what waiting writers otherwise run, sleeps in growing steps
    (1, 2, 5 ... 100 ms) and rechecks, so under load a writer often sleeps on while the lock
    is free (p99s of hundreds of milliseconds with the lock idle); the kernel instead wakes
    a blocked `flock` waiter the moment the holder lets go, across gunicorn's worker
    processes and threads alike (each transaction opens its own descriptor, and flock locks
    belong to the open file).

    What the queue does not change: the database lock is still SQLite's, so a writer that
    does not queue (another program, a migration, a reader upgrading to a write) is still
    waited for by the busy timeout; a thread that already holds the queue through one
    connection and begins a write on another does not queue (it would wait for itself) and
    meets SQLite's busy timeout as before; and if the lock file cannot be opened, writers
    just do not queue. What it does change: a waiting writer no longer gives up after the
    busy timeout (30 s, "database is locked") but waits as long as the holder holds, so
    code that holds a write open while waiting for another thread's write would hang
    instead of failing (none does; in a web worker the request budget's alarm still
    interrupts the wait)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._held: dict[int, tuple[int, int]] = {}  # id(connection) -> (descriptor, thread)
        self._mutex = threading.Lock()

    @staticmethod
    def _key(connection: Any) -> int:
        # the DB-API connection, whether handed over bare or as the pool's proxy of it
        return id(getattr(connection, "dbapi_connection", connection))

    def acquire(self, dbapi_connection: Any) -> None:
        """Wait for this connection's turn to write (a no-op if it already has it)."""
        key, me = self._key(dbapi_connection), threading.get_ident()
        with self._mutex:
            if key in self._held or any(t == me for _, t in self._held.values()):
                return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:  # interrupted (the request budget's alarm): not queued any more
            os.close(fd)
            raise
        with self._mutex:
            self._held[key] = (fd, me)

    def release(self, dbapi_connection: Any) -> None:
        """Let the next writer go (closing the descriptor drops its flock)."""
        with self._mutex:
            held = self._held.pop(self._key(dbapi_connection), None)
        if held is not None:
            os.close(held[0])

    def release_after(self, dialect: sa.Dialect) -> None:
        """Release after every COMMIT and ROLLBACK the engine's dialect issues, and when a
        connection is closed (an invalidated one is closed without a ROLLBACK), wrapping
        the engine's own dialect instance (SQLAlchemy's commit events fire before the
        COMMIT)."""
        for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
            original = getattr(dialect, name)

            def released(dbapi_connection: Any, _original: Any = original) -> None:
                try:
                    _original(dbapi_connection)
                finally:
                    self.release(dbapi_connection)

            setattr(dialect, name, released)


class Database:
    """Holds the engine and the two session factories (read and write) of one app."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_db_engine(url, **engine_kwargs)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        writer_bind = self.engine
        if self.engine.dialect.name == "sqlite":
            writer_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._writer = sessionmaker(writer_bind, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, *, write: bool = True) -> Session:
        """A new session; `write=True` takes SQLite's write lock at BEGIN."""
        return (self._writer if write else self._reader)()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A write session committed on success and rolled back on any exception."""
        session = self.session(write=True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """PostgreSQL: the statements executed inside are queued and sent together, in one round
    trip with the next `fetch_one` or when the block ends (psycopg's pipeline mode). Only for
    statements whose results are not read (inserts, updates); reads go through `fetch_one`.
    Elsewhere: a plain block."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    driver: Any = connection.connection.driver_connection  # psycopg's Connection here
    try:
        with driver.pipeline():
            yield
    except driver.Error as exc:  # a queued statement failed: the error SQLAlchemy would raise
        raise sa.exc.DBAPIError.instance(None, None, exc, driver.Error) from exc


def fetch_one(session: Session, sql: str, params: tuple | dict) -> tuple | None:
    """PostgreSQL: one row of a driver-level query (`%s` placeholders) on the session's
    connection and transaction; inside `pipelined` it goes with the queued statements."""
    driver: Any = session.connection().connection.driver_connection  # psycopg's Connection
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except driver.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, driver.Error) from exc


def bulk_insert(session: Session, table: sa.Table, columns: Sequence[str],
                rows: list[tuple]) -> None:
    """Set-based insert of tuples already in storage format, through the driver and in the
    session's transaction: COPY on PostgreSQL (psycopg), one `executemany` on SQLite.
    Pending ORM changes are not flushed first: flush what the rows refer to."""
    if not rows:
        return
    connection = session.connection()
    raw: Any = connection.connection.driver_connection  # the DB-API connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if connection.dialect.name == "sqlite":
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table.name} ({names}) "
                               f"VALUES ({', '.join('?' * len(columns))})", rows)
        finally:
            cursor.close()
        return
    session.execute(table.insert(), [dict(zip(columns, row, strict=True))  # pragma: no cover
                                     for row in rows])


def storage_rows(session: Session, table: sa.Table, columns: Sequence[str],
                 records: Iterable[Mapping[str, Any]]) -> list[tuple]:
    """`records` (Python values by column name) as tuples in the driver's storage format for
    `bulk_insert`: each value goes through its column type's bind processor (JSON documents,
    UTC timestamps ...), as SQLAlchemy would convert it, minus its per-row statement
    assembly. A datetime shared by the rows (a batch's timestamp) is converted once."""
    dialect = session.connection().dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
    converted: dict[int, Any] = {}

    def convert(processor: Any, value: Any) -> Any:
        if processor is None or value is None:
            return value
        if isinstance(value, dt.datetime):
            key = id(value)
            if key not in converted:
                converted[key] = processor(value)
            return converted[key]
        return processor(value)

    pairs = list(zip(processors, columns, strict=True))
    return [tuple(convert(p, record[name]) for p, name in pairs) for record in records]


def bulk_insert_records(session: Session, table: sa.Table,
                        records: Sequence[Mapping[str, Any]]) -> None:
    """`bulk_insert` of dicts of Python values, all with the keys of the first."""
    if not records:
        return
    columns = list(records[0])
    bulk_insert(session, table, columns, storage_rows(session, table, columns, records))


def dialect_name(session: Session) -> str:
    """The name of the database the session talks to: `sqlite` or `postgresql`."""
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(database: Session | str, table: sa.Table,
                              returning: Sequence[sa.ColumnElement[Any]] = ()) -> sa.Insert:
    """`INSERT INTO table ... ON CONFLICT DO NOTHING [RETURNING ...]` for the session's
    database (or the dialect named), built once per dialect, table and returned columns. The
    insert waits for a concurrent insert of the same key to commit or roll back, then skips
    the row; RETURNING yields no row for a skipped one."""
    name = database if isinstance(database, str) else dialect_name(database)
    return _insert_ignoring_conflicts(name, table, tuple(returning))


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table: sa.Table,
                               returning: tuple[sa.ColumnElement[Any], ...]) -> sa.Insert:
    builders: dict[str, Callable[[sa.Table], postgresql.Insert | sqlite.Insert]] = {
        "postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in builders:
        raise LookupError(f"no INSERT ... ON CONFLICT DO NOTHING for {dialect}")
    stmt = builders[dialect](table).on_conflict_do_nothing()
    return stmt.returning(*returning) if returning else stmt


def current_session() -> Session:
    """The session of the current Flask request (opened lazily, committed by the app when the
    view succeeds, rolled back otherwise). Only for `api.py` modules and the shell."""
    session = g.get("_db_session")
    if session is None:
        database: Database = current_app.extensions["ecovalue.db"]
        write = not has_request_context() or request.method not in ("GET", "HEAD", "OPTIONS")
        session = database.session(write=write)
        g._db_session = session
    return session
