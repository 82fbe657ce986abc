"""Alembic environment: runs the revisions against the URL the caller configured.

The URL comes from the Alembic config (set by ledger.db.schema.migrate) or else from DATABASE_URL. Revisions
never import the application's models: a migration must keep meaning what it meant when it was written.
"""

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

from ledger.db.engine import normalise_url

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
if not url:
    raise SystemExit("set DATABASE_URL (or sqlalchemy.url) to the database to migrate")
config.set_main_option("sqlalchemy.url", normalise_url(url))


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
