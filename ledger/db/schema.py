"""Builds and upgrades the schema through the Alembic revisions of the ``migrations`` package.

The revisions ship with the installed package, and Alembic finds them as a package resource
(``migrations:``), so an installed FundLedger migrates wherever it runs from.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = "migrations:"  # Alembic's package-resource form: the directory of the ``migrations`` package


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrades the database behind ``engine`` to ``revision`` (the newest by default)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
