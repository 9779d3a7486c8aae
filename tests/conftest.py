"""Fixtures shared by every test package.

The same suite runs on SQLite (default) and on PostgreSQL: set ECOVALUE_TEST_DATABASE_URL to a
server URL (any database on it; `make test` starts a throwaway server and does this) and each
test session creates and drops a database of its own on that server.

Each test starts from empty tables with the reference regions (prefecture and counties) loaded.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from catalog.services import load_reference_regions
from ecovalue import migrate
from ecovalue.app import create_app, import_models
from ecovalue.auth import Principal, system_principal
from ecovalue.auth.services import create_token
from ecovalue.db import Database

TEST_DATA_KEY = "Wx2v8Jm0Y7o3QfQ1kqv5n2l6P0x9C5rZbY3sT1uV8wE="

WANGMO, XINGYI, CEHENG = "522326", "522301", "522327"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("ECOVALUE_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    name = f"ecovalue_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    migrate.upgrade(database_url)
    application = create_app({
        "DATABASE_URL": database_url,
        "TESTING": True,
        "DATA_KEY": TEST_DATA_KEY,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "LOG_LEVEL": "WARNING",
    })
    yield application
    application.extensions["ecovalue.db"].dispose()


@pytest.fixture(scope="session")
def database(app: Flask) -> Database:
    return app.extensions["ecovalue.db"]


def wipe(database: Database) -> None:
    """Delete every row of every table (the schema stays)."""
    tables = [t for t in reversed(import_models().sorted_tables) if t.name != "alembic_version"]
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                conn.execute(table.delete())
            if conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'"
            ).first():
                conn.exec_driver_sql("DELETE FROM sqlite_sequence")


@contextlib.contextmanager
def tampering(database: Database) -> Iterator[Session]:
    """A unit of work as an attacker with full database access would run it: on PostgreSQL
    with triggers off (`session_replication_role = replica`, what a superuser can do), so a
    test can show that the tampering is detected even when the triggers are bypassed."""
    with database.unit_of_work() as s:
        if database.dialect == "postgresql":
            s.execute(sa.text("SET LOCAL session_replication_role = replica"))
        yield s


def load_demo(app: Flask) -> None:
    """The demo dataset, as `ecovalue demo load` creates it."""
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output


@pytest.fixture(autouse=True)
def _fresh_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty tables plus reference regions before every test that uses the app, except in
    modules marked `shared_database`, which prepare their data once themselves."""
    uses_db = any(name in request.fixturenames
                  for name in ("app", "client", "session", "database", "tokens"))
    if not uses_db or request.node.get_closest_marker("shared_database"):
        yield
        return
    database = request.getfixturevalue("database")
    wipe(database)
    with database.unit_of_work() as session:
        load_reference_regions(session)
    yield


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def session(database: Database) -> Iterator[Session]:
    """A write session for calling services directly; the test commits what it wants kept."""
    s = database.session(write=True)
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture()
def system() -> Principal:
    return system_principal("test")


class Tokens:
    """Bearer headers per role, created on first use: `tokens.admin`, `tokens.registrar()`,
    `tokens.trader(party_id)`, `tokens.headers("verifier")`."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._cache: dict[tuple, dict[str, str]] = {}

    def headers(self, role: str, *, county: str | None = None,
                party: int | None = None) -> dict[str, str]:
        key = (role, county, party)
        if key not in self._cache:
            with self._database.unit_of_work() as s:
                issued = create_token(s, system_principal("test"), name=f"test {role}",
                                      role=role, county_code=county, party_id=party)
            self._cache[key] = {"Authorization": f"Bearer {issued.secret}"}
        return self._cache[key]

    def registrar(self, county: str = WANGMO) -> dict[str, str]:
        return self.headers("registrar", county=county)

    def trader(self, party: int) -> dict[str, str]:
        return self.headers("trader", party=party)

    def __getattr__(self, role: str) -> dict[str, str]:
        if role in ("admin", "verifier", "finance", "auditor"):
            return self.headers(role)
        raise AttributeError(role)


@pytest.fixture()
def tokens(database: Database) -> Tokens:
    return Tokens(database)


@pytest.fixture()
def problem() -> Callable:
    """Assert a response is problem+json with `status` (and `code`); returns the body."""

    def check(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["status"] == status
        assert body["type"] == f"urn:ecovalue:problem:{body['code']}"
        if code is not None:
            assert body["code"] == code, body
        return body

    return check


@pytest.fixture()
def cli(app: Flask) -> Callable:
    """Invoke the `ecovalue` command in-process: `cli("audit", "verify")`."""
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(args=list(args), input=input)

    return invoke
