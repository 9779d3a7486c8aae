"""The statement budget of the write path: how many times one ledger operation talks to the
database, on SQLite (statements) and PostgreSQL (round trips: a Sync or a simple Query in the
libpq protocol trace, so statements sent together in a pipeline count once). The numbers
are today's; lowering them is welcome, raising them fails here instead of silently."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from ecovalue.auth import system_principal
from ledger.core import services
from tests.ledger.conftest import NOW, transfer

SYS = system_principal("test")
KEYS = itertools.count()


class Counter:
    count = 0


@contextlib.contextmanager
def talks(session) -> Iterator[Counter]:
    """Count what `session` sends to the database inside the block."""
    counter = Counter()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        from psycopg.pq import Trace

        pgconn = connection.connection.driver_connection.pgconn
        with tempfile.TemporaryFile("w+") as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
            try:
                yield counter
            finally:
                pgconn.untrace()
            trace.seek(0)
            counter.count = sum(1 for line in trace.read().splitlines()
                                if line.split("\t")[:3:2] in (["F", "Sync"], ["F", "Query"]))
        return

    def count(*_args: object) -> None:
        counter.count += 1

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(connection, "before_cursor_execute", count)


@pytest.fixture()
def funded(world, database):
    with database.unit_of_work() as s:
        services.create_transaction(s, SYS, transfer("BANK", "ALICE", 10**9), now=NOW)
    return world


def _committed(database, spec) -> int:
    with database.unit_of_work() as s:
        return services.create_transaction(s, SYS, spec, now=NOW).id


def _measure(database, fn) -> int:
    with database.unit_of_work() as s, talks(s) as counter:
        fn(s)
    return counter.count


def _post(database, **kwargs):
    return lambda s: services.create_transaction(s, SYS, transfer("ALICE", "PLANT", 5,
                                                                  **kwargs), now=NOW)


def _resolve(database, resolve):
    pending = _committed(database, transfer("ALICE", "PLANT", 5, pending=True))
    return lambda s: resolve(s, SYS, pending, now=NOW)


def _reverse(database):
    original = _committed(database, transfer("ALICE", "PLANT", 5))
    return lambda s: services.reverse_transaction(s, SYS, original, now=NOW)


def _batch(n: int):
    return lambda s: services.post_batch(s, SYS, [transfer("ALICE", "PLANT", 1)] * n, now=NOW)


#: operation -> (the call, SQLite statements, PostgreSQL round trips); both count the BEGIN,
#: not the COMMIT. PostgreSQL: the look-up with the period lock, the header, the balance rows'
#: lock, then every write and the audit append in one pipelined round trip.
OPERATIONS = {
    "post": (lambda db: _post(db), 7, 5),
    "post with an idempotency key": (lambda db: _post(db, idempotency_key=f"k-{next(KEYS)}"),
                                     8, 5),
    "pending": (lambda db: _post(db, pending=True), 8, 5),
    "post pending": (lambda db: _resolve(db, services.post_pending), 10, 8),
    "void pending": (lambda db: _resolve(db, services.void_pending), 9, 8),
    "reverse": (lambda db: _reverse(db), 11, 9),
    "batch": (lambda db: _batch(3), 8, 10),
}


#: psycopg prepares a statement on its 5th execution, which costs one round trip more that
#: once: the budget is the steady state, measured after as many runs of the operation
WARM_UP = 6


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_statement_budget(funded, database, operation):
    make, sqlite_budget, postgres_budget = OPERATIONS[operation]
    budget = postgres_budget if database.dialect == "postgresql" else sqlite_budget
    for _ in range(WARM_UP):
        _measure(database, make(database))
    used = _measure(database, make(database))
    assert used <= budget, f"{operation}: {used} > budget {budget}"


def test_a_batch_costs_the_same_whatever_its_size(funded, database):
    for _ in range(WARM_UP):
        _measure(database, _batch(2))
    assert len({_measure(database, _batch(n)) for n in (1, 10, 1000)}) == 1
