"""Alembic environment: the URL comes from the caller (ecovalue.migrate) or the environment."""

from __future__ import annotations

import os

from alembic import context

from ecovalue.app import import_models
from ecovalue.db import create_db_engine

config = context.config
target_metadata = import_models()
url = config.attributes.get("database_url") or os.environ["ECOVALUE_DATABASE_URL"]


def run_migrations() -> None:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            compare_server_default=False,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
