"""Models and Alembic migrations never drift apart."""

from __future__ import annotations

from ecovalue import migrate


def test_alembic_check_finds_no_difference(app, database_url):
    migrate.check(database_url)
