"""Alembic, driven from code: `ecovalue db upgrade` and the tests use these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models differ from what the migrations create."""
    command.check(alembic_config(url))


def revision(url: str, message: str, *, head: str = "head", rev_id: str | None = None) -> None:
    """Autogenerate a migration on top of `head` (a revision id when there are several
    heads, one per package branch)."""
    command.revision(alembic_config(url), message=message, autogenerate=True, head=head,
                     rev_id=rev_id)
