"""The one ``MetaData`` every table of the database is declared on, and its naming convention.

The ledger's models (``ledger.db.models``) and the edge's own tables (``api.edge.tables``: kept answers, the
audit log) share it, so that foreign keys between them resolve and one comparison checks all of them against
the migrations.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Constraint names are part of the schema: the migrations spell the same names, and refusals name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
