"""The column types the models share: 64-bit ids, and one UTC moment type for both engines."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator

# 64-bit ids on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the rowid, which is already 64-bit.
Id = BigInteger().with_variant(Integer(), "sqlite")

# How SQLAlchemy's SQLite dialect writes a DATETIME (it keeps no zone); the store's raw inserts write the same.
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UtcDateTime(TypeDecorator):
    """A moment, kept in UTC and always handed back with its zone.

    PostgreSQL keeps ``timestamptz``; SQLite has no zones, so the moment is stored as UTC text and given its zone
    back when read. A naive datetime is refused when written: the ledger cannot know what clock it was read from.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a moment needs its zone: {value!r}")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def sqlite_text(moment: dt.datetime) -> str:
    """The text SQLite keeps for a moment: UTC, without the zone (as ``UtcDateTime`` writes it, ``SQLITE_FORMAT``).
    ``isoformat`` pads the year to four digits, as the dialect does (``strftime`` does not, for years before 1000)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def utc_now() -> dt.datetime:
    """The moment rows are stamped with: aware, in UTC."""
    return dt.datetime.now(dt.UTC)
