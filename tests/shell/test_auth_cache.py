"""The per-worker token cache: a known token costs no read of `api_tokens`, and a change of
any token (a revocation, a new expiry, a deletion, made by the service or by SQL by hand) is
seen by the next request of EVERY worker: here two apps on one database, each with its own
cache, stand for two gunicorn workers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask

from ecovalue.app import create_app
from ecovalue.auth import services as tokens_service
from ecovalue.auth.models import ApiToken
from ecovalue.clock import utcnow
from tests.conftest import TEST_DATA_KEY


@pytest.fixture()
def second_app(app: Flask, database_url: str, tmp_path) -> Iterator[Flask]:
    """Another worker: its own app, engine and token cache, on the same database."""
    other = create_app({"DATABASE_URL": database_url, "TESTING": True,
                        "DATA_KEY": TEST_DATA_KEY, "INSTANCE_DIR": str(tmp_path),
                        "LOG_LEVEL": "WARNING"})
    yield other
    other.extensions["ecovalue.db"].dispose()


def _cache(app: Flask) -> tokens_service.TokenCache:
    return app.extensions["ecovalue.auth.token_cache"]


def _issue(database, system, **kwargs) -> tuple[int, dict[str, str]]:
    with database.unit_of_work() as s:
        issued = tokens_service.create_token(s, system, name="worker test", role="auditor",
                                             **kwargs)
    return issued.token.id, {"Authorization": f"Bearer {issued.secret}"}


def _whoami(app: Flask, headers: dict[str, str]) -> int:
    return app.test_client().get("/auth/whoami", headers=headers).status_code


def _warm(apps: list[Flask], headers: dict[str, str]) -> None:
    """Every worker serves the token twice: the second time from its cache."""
    for worker in apps:
        hits = _cache(worker).hits
        assert _whoami(worker, headers) == 200
        assert _whoami(worker, headers) == 200
        assert _cache(worker).hits == hits + 1  # the cache is really in use


def test_a_known_token_is_served_from_the_cache_without_reading_it(app, database, system):
    _, headers = _issue(database, system)
    assert _whoami(app, headers) == 200
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(database.engine, "before_cursor_execute", seen)
    try:
        assert _whoami(app, headers) == 200
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "api_tokens" in s]


def test_a_revocation_is_refused_on_the_next_request_of_every_worker(
        app, second_app, database, system, problem):
    token_id, headers = _issue(database, system)
    _warm([app, second_app], headers)
    with database.unit_of_work() as s:  # revoked through the first worker's database
        tokens_service.revoke_token(s, system, token_id)
    for worker in (second_app, app):
        problem(worker.test_client().get("/auth/whoami", headers=headers), 401)


def test_a_change_made_by_hand_in_sql_is_seen_by_every_worker(
        app, second_app, database, system):
    token_id, headers = _issue(database, system)
    other_id, other_headers = _issue(database, system)
    _warm([app, second_app], headers)
    _warm([app, second_app], other_headers)
    with database.engine.begin() as conn:  # an operator's UPDATE, not the service
        conn.execute(sa.update(ApiToken).where(ApiToken.id == token_id)
                     .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert [_whoami(w, headers) for w in (app, second_app)] == [401, 401]
    assert [_whoami(w, other_headers) for w in (app, second_app)] == [200, 200]
    with database.engine.begin() as conn:  # and a deleted token
        conn.execute(sa.delete(ApiToken).where(ApiToken.id == other_id))
    assert [_whoami(w, other_headers) for w in (app, second_app)] == [401, 401]


def test_a_cached_token_expires_on_time(app, database, system):
    _, headers = _issue(database, system, expires_at=utcnow() + dt.timedelta(minutes=5))
    _warm([app], headers)
    with time_machine.travel(utcnow() + dt.timedelta(minutes=5, seconds=1)):
        assert _whoami(app, headers) == 401


def test_without_the_generation_row_nothing_is_cached(app, database, system):
    _, headers = _issue(database, system)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM auth_state")
    hits = _cache(app).hits
    for _ in range(3):
        assert _whoami(app, headers) == 200
    assert _cache(app).hits == hits


def test_unknown_tokens_are_not_cached(app, problem):
    headers = {"Authorization": "Bearer evk_" + "u" * 43}
    cached = dict(_cache(app)._entries)
    for _ in range(2):
        problem(app.test_client().get("/auth/whoami", headers=headers), 401)
    assert _cache(app)._entries == cached


def test_every_token_change_gives_a_new_generation(database, system):
    def generation() -> int | None:
        with database.session() as s:
            return tokens_service.token_generation(s)

    token_id, _ = _issue(database, system)
    seen = [generation()]
    with database.unit_of_work() as s:
        tokens_service.revoke_token(s, system, token_id)
    seen.append(generation())
    _issue(database, system)
    seen.append(generation())
    assert None not in seen and len(set(seen)) == 3
