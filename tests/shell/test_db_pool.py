"""Pooled server connections: pinged only after they sat idle (ecovalue.db._ping_idle_connections),
not on every checkout as `pool_pre_ping` would (a round trip per request)."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.db import Database


def _server(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        import pytest

        pytest.skip("a server connection pool (SQLite files need no ping)")


def _pings(db: Database, monkeypatch) -> list[object]:
    calls: list[object] = []
    real = db.engine.dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counting)
    return calls


def _select_one(db: Database) -> int:
    with db.session() as s:
        return s.execute(sa.text("SELECT 1")).scalar_one()


def test_a_connection_used_just_now_is_not_pinged(database_url, monkeypatch):
    _server(database_url)
    db = Database(database_url, ping_after_idle=60)
    try:
        pings = _pings(db, monkeypatch)
        for _ in range(5):
            assert _select_one(db) == 1
        assert pings == []
    finally:
        db.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_unseen(database_url, monkeypatch):
    _server(database_url)
    db = Database(database_url, ping_after_idle=0)
    try:
        pings = _pings(db, monkeypatch)
        with db.session() as s:
            pid = s.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        killer = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        with killer.connect() as other:
            assert other.exec_driver_sql(
                f"SELECT pg_terminate_backend({int(pid)})").scalar() is True
        killer.dispose()
        with db.session() as s:
            assert s.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert pings, "an idle connection is pinged before use"
    finally:
        db.dispose()
