"""The bulk-import path: many entries (a migration from another system, a year of bank lines) in one
database transaction, all or none.

It posts through the same checks as every other write, in chunks of ``MAX_ENTRIES_PER_CALL`` so that
each statement's arrays stay a sensible size; on PostgreSQL the chunks are pipelined, so this process
prepares one chunk while the server writes the previous one. Afterwards it asks PostgreSQL to ANALYZE the ledger's
tables: a connection plans its foreign-key checks once, and a plan made while the tables looked empty
(a seq scan) would otherwise be used against a million rows until autovacuum catches up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from sqlalchemy import text

from ledger.books.entries import cycle_collection_paused, post_chunks
from ledger.core.drafts import MAX_ENTRIES_PER_CALL, EntryDraft
from ledger.db.engine import Database


def _chunks(drafts: Iterable[EntryDraft], size: int) -> Iterator[list[EntryDraft]]:
    iterator = iter(drafts)
    while chunk := list(islice(iterator, size)):
        yield chunk


def import_entries(db: Database, drafts: Iterable[EntryDraft], chunk_size: int = MAX_ENTRIES_PER_CALL) -> int:
    """Posts every draft in one transaction; returns how many entries are new (replays are not)."""

    def work(session) -> int:
        return post_chunks(session, _chunks(drafts, chunk_size))

    with cycle_collection_paused():
        new = db.write(work, attempts=1)  # an iterable can be consumed only once: no blind retry
    analyze(db)
    return new


def analyze(db: Database) -> None:
    """Refreshes the planner's statistics of the ledger tables (PostgreSQL only; SQLite needs none)."""
    if db.dialect != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE entries, postings, balances"))
