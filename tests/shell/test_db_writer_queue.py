"""SQLite writers queue on a lock file before BEGIN IMMEDIATE (ecovalue.db.WriterQueue): the
queue is held exactly from a write transaction's BEGIN to its COMMIT or ROLLBACK, so a waiting
writer (another gunicorn worker process, another thread) is woken by the kernel as soon as the
holder is done instead of sleeping in SQLite's busy handler. These tests use their own database
files (the queue is a SQLite-file feature) and run whatever the suite's database."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecovalue.db import Database


def _queue_taken(lock_file: Path) -> bool:
    """Whether some writer holds the queue, probed from a descriptor of our own."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our probe's lock, if it got it
    return False


@pytest.fixture
def db(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    with database.unit_of_work() as s:
        s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    yield database
    database.dispose()


def test_a_writer_holds_the_queue_from_begin_to_commit(db, tmp_path):
    lock_file = tmp_path / "queue.sqlite3-writers.lock"
    assert not _queue_taken(lock_file)
    session = db.session(write=True)
    session.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert _queue_taken(lock_file)
    session.commit()
    assert not _queue_taken(lock_file)
    session.close()


def test_a_rollback_and_a_failed_unit_of_work_release_the_queue(db, tmp_path):
    lock_file = tmp_path / "queue.sqlite3-writers.lock"
    session = db.session(write=True)
    session.execute(sa.text("INSERT INTO t VALUES (1)"))
    session.rollback()
    assert not _queue_taken(lock_file)
    session.close()
    with pytest.raises(sa.exc.OperationalError), db.unit_of_work() as s:
        s.execute(sa.text("INSERT INTO t VALUES (2)"))
        s.execute(sa.text("INSERT INTO no_such_table VALUES (3)"))
    assert not _queue_taken(lock_file)
    with db.session(write=False) as s:
        assert s.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0


def test_an_invalidated_connection_releases_the_queue(db, tmp_path):
    """A connection dropped in mid-transaction (closed without a ROLLBACK) lets the next
    writer go instead of holding the queue for ever."""
    lock_file = tmp_path / "queue.sqlite3-writers.lock"
    session = db.session(write=True)
    session.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert _queue_taken(lock_file)
    session.connection().invalidate()
    assert not _queue_taken(lock_file)
    session.close()
    with db.unit_of_work() as s:
        s.execute(sa.text("INSERT INTO t VALUES (2)"))
    with db.session(write=False) as s:
        assert s.execute(sa.text("SELECT x FROM t")).scalars().all() == [2]


def test_readers_do_not_queue(db, tmp_path):
    lock_file = tmp_path / "queue.sqlite3-writers.lock"
    with db.session(write=False) as s:
        assert s.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0
        assert not _queue_taken(lock_file)


def test_a_second_writer_waits_in_the_queue_and_goes_when_the_first_commits(db):
    """The second writer is blocked before its BEGIN (not failing, not busy-polling) while
    the first holds the database, and writes right after the first commits."""
    first = db.session(write=True)
    first.execute(sa.text("INSERT INTO t VALUES (1)"))
    events: list[str] = []

    def second() -> None:
        with db.unit_of_work() as s:
            s.execute(sa.text("INSERT INTO t VALUES (2)"))
            events.append("second wrote")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert events == [] and thread.is_alive()
    events.append("first commits")
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert events == ["first commits", "second wrote"]
    with db.session(write=False) as s:
        assert s.execute(sa.text("SELECT x FROM t ORDER BY rowid")).scalars().all() == [1, 2]


def test_a_thread_writing_on_a_second_connection_does_not_wait_for_itself(tmp_path):
    """A thread that holds the queue through one session and begins a write on another
    meets SQLite's busy timeout ('database is locked'), as without the queue, instead of
    waiting for itself for ever."""
    db = Database(f"sqlite:///{tmp_path / 'self.sqlite3'}")

    @sa.event.listens_for(db.engine, "connect")
    def _short_busy_timeout(dbapi_connection, _record) -> None:  # after the engine's 30 s
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    try:
        with db.unit_of_work() as s:
            s.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        outer = db.session(write=True)
        outer.execute(sa.text("INSERT INTO t VALUES (1)"))
        inner = db.session(write=True)
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            inner.execute(sa.text("INSERT INTO t VALUES (2)"))
        inner.close()
        outer.commit()
        outer.close()
        with db.unit_of_work() as s:  # and the queue is free again afterwards
            s.execute(sa.text("INSERT INTO t VALUES (3)"))
        with db.session(write=False) as s:
            assert s.execute(sa.text("SELECT x FROM t ORDER BY rowid")).scalars().all() == [1, 3]
    finally:
        db.dispose()
