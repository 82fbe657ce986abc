"""The bulk-import path: many entries in one transaction, in pipelined chunks, through the same checks as every
write, all or none; a replayed entry is not counted again."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.books.balances import balance
from ledger.books.bulk import import_entries
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.errors import AccountLimitExceeded
from ledger.core.money import Money
from tests.builders import balances_of, new_books, particulars


def gifts(books, count: int, prefix: str) -> list:
    return [recipes.offline_donation(books.chart, books.open_fund, Money(100 + n, "CNY"), "bank",
                                     particulars(dt.date(2026, 11, 1 + n % 28), f"{prefix}-{n}"))
            for n in range(count)]


def test_a_bulk_import_in_chunks_posts_every_entry_once(db):
    books = new_books(db)

    new = import_entries(db, gifts(books, 250, "import"), chunk_size=100)
    again = import_entries(db, gifts(books, 260, "import"), chunk_size=100)

    with db.read() as session:
        bank = balance(session, books.account(Role.BANK), books.open_fund, "CNY")
    assert (new, again) == (250, 10)
    assert bank.debits_minor == sum(100 + n for n in range(260))


def test_a_bulk_import_with_one_bad_entry_writes_none_of_them(db):
    books = new_books(db)
    overpaid = recipes.grant_paid(books.chart, books.open_fund, Money(1, "CNY"),
                                  particulars(idempotency_key="pays what is not owed"))
    drafts = [*gifts(books, 150, "bad"), overpaid]
    before = balances_of(db, books.organisation_id)

    with pytest.raises(AccountLimitExceeded) as refused:
        import_entries(db, drafts, chunk_size=100)

    assert refused.value.field == "entries[50].postings"  # the second chunk's 51st entry
    assert balances_of(db, books.organisation_id) == before


def test_a_failure_of_the_pipeline_midway_loses_no_batch_and_keeps_none_twice(postgres_db, monkeypatch):
    """The pipeline fails once, at its second batch's write (a passing fault: a deadlock, a timeout): every batch,
    those sent and those not yet drawn, is judged and written again, once."""
    from ledger.db import store

    books = new_books(postgres_db)
    real_write, calls = store._postgres_write, []

    def failing_once(batch):
        calls.append(batch)
        if len(calls) == 2:
            return "SELECT 1 / 0", {}
        return real_write(batch)

    monkeypatch.setattr(store, "_postgres_write", failing_once)
    new = import_entries(postgres_db, gifts(books, 450, "midway"), chunk_size=100)

    with postgres_db.read() as session:
        bank = balance(session, books.account(Role.BANK), books.open_fund, "CNY")
    assert new == 450
    assert bank.debits_minor == sum(100 + n for n in range(450))
    assert len(calls) > 5  # the pipeline's two writes, then the five batches written in turn
