"""Builds and upgrades the schema through the Alembic revisions of the ``migrations`` package.

The revisions ship with the installed package, and Alembic finds them as a package resource
(``migrations:``), so an installed FundLedger migrates wherever it runs from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

MIGRATIONS = "migrations:"  # Alembic's package-resource form: the directory of the ``migrations`` package


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrades the database behind ``engine`` to ``revision`` (the newest by default)."""
    with _migrating(engine) as config:
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def downgrade(engine: Engine, revision: str = "base") -> None:
    with _migrating(engine) as config:
        command.downgrade(config, revision)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """One transaction for the whole migration. On SQLite, whose ALTER TABLE cannot change a constraint, a revision
    rebuilds a table (copy, drop, rename) while other tables point at it: as SQLite's documentation prescribes, the
    foreign keys are switched off outside the transaction for the rebuild, and every one is checked before the
    commit (a violation rolls the migration back)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                yield config
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
