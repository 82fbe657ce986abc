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
