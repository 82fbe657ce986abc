"""Sealing and the integrity check (DESIGN.md invariants 3 and 7), on SQLite and PostgreSQL.

The tamper tests change rows behind the application's back with the database's guards lifted, which
corrupts their organisation for good: every call of ``verify`` in this file is therefore scoped to the
test's own organisation, so that one test's tampering never shows up in another's findings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError

from ledger.books.entries import post_entry
from ledger.books.integrity import chain_head, seal_pending, verify
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import EntryDraft, PostedEntry
from ledger.core.money import Money
from ledger.db.engine import Database
from ledger.db.models import SealBatch
from tests.builders import Books, key, new_books, particulars


def post(db: Database, draft: EntryDraft) -> PostedEntry:
    return db.write(lambda session: post_entry(session, draft))


def gift(books: Books, amount_minor: int = 10_000) -> EntryDraft:
    return recipes.offline_donation(books.chart, books.open_fund, Money(amount_minor, "CNY"), "bank", particulars())


def online_gift(books: Books) -> EntryDraft:
    return recipes.online_donation(books.chart, books.open_fund, Money(20_000, "CNY"), Money(600, "CNY"),
                                   particulars())


Finding = tuple[str, tuple[tuple[str, object], ...]]  # a Problem's kind and ids, comparable and sortable


def finding(kind: str, **ids: object) -> Finding:
    return kind, tuple(sorted(ids.items()))


def problems_of(db: Database, organisation_id: int) -> list[Finding]:
    """What ``verify`` finds wrong with one organisation, in a stable order."""
    with db.read() as session:
        return sorted(finding(p.kind, **p.ids) for p in verify(session, organisation_id=organisation_id))


def batches_of(db: Database, organisation_id: int) -> list[SealBatch]:
    with db.read() as session:
        return list(session.scalars(select(SealBatch).where(SealBatch.organisation_id == organisation_id)
                                    .order_by(SealBatch.sequence_no)))


def head_of(db: Database, organisation_id: int) -> tuple[int, str] | None:
    with db.read() as session:
        return chain_head(session, organisation_id)


def first_posting(db: Database, entry_id: int) -> dict:
    with db.engine.connect() as connection:
        return dict(connection.execute(text("SELECT * FROM postings WHERE entry_id = :id ORDER BY id LIMIT 1"),
                                       {"id": entry_id}).mappings().one())


@contextmanager
def guards_lifted(db: Database, table: str, action: str) -> Iterator[Connection]:
    """A transaction in which ``action`` (update / delete) on ``table`` is not refused: a tamperer's view.

    PostgreSQL: triggers do not fire under ``session_replication_role = replica`` (superuser only), set for
    this transaction alone. SQLite: the guard trigger is dropped and recreated from its own stored text,
    inside the same transaction, so the guard is back the moment it commits.
    """
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            yield connection
            return
        trigger = f"{table}_no_{action}"
        definition = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                        {"n": trigger}).scalar_one()
        connection.execute(text(f"DROP TRIGGER {trigger}"))
        yield connection
        connection.execute(text(definition))


def skip_an_entry_id(db: Database, spare: Books) -> int:
    """Leaves an unused entry id below the next one the ledger will give, and returns it.

    PostgreSQL's sequence has gaps anyway (every rolled-back write leaves one), so one nextval does it.
    On SQLite ids are max + 1, so a bare entry of a spare organisation is appended one id further on.
    """
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            return connection.execute(text("SELECT nextval(pg_get_serial_sequence('entries', 'id'))")).scalar_one()
        skipped = connection.execute(text("SELECT max(id) + 1 FROM entries")).scalar_one()
        connection.execute(text(
            "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, "
            "idempotency_key, payload_digest, recorded_by) VALUES (:id, :org, 'journal', '2026-11-02', "
            "'2026-11-02 00:00:00', '', :key, :digest, 'spare')"),
            {"id": skipped + 1, "org": spare.organisation_id, "key": key("spare"), "digest": "0" * 64})
        return skipped


# --- sealing ------------------------------------------------------------------------------------------------


def test_seal_pending_seals_every_new_entry_and_verify_finds_nothing_wrong(db):
    books = new_books(db)
    entries = [post(db, gift(books)), post(db, online_gift(books)), post(db, gift(books, 500))]

    assert seal_pending(db) >= 1

    [batch] = batches_of(db, books.organisation_id)
    assert (batch.sequence_no, batch.first_entry_id, batch.last_entry_id) == (1, entries[0].id, entries[-1].id)
    assert (batch.entry_count, batch.posting_count) == (3, 4)
    assert head_of(db, books.organisation_id) == (1, batch.batch_hash)
    assert problems_of(db, books.organisation_id) == []


def test_an_idle_sealer_writes_nothing_and_a_new_entry_gets_the_next_batch(db):
    books = new_books(db)
    post(db, gift(books))
    seal_pending(db)
    sealed = batches_of(db, books.organisation_id)

    assert seal_pending(db) == 0  # nothing new anywhere: no batch, and no table lock taken to find that out
    assert [b.batch_hash for b in batches_of(db, books.organisation_id)] == [b.batch_hash for b in sealed]

    later = post(db, gift(books, 700))
    assert seal_pending(db) >= 1
    [*_, newest] = batches_of(db, books.organisation_id)
    assert (newest.sequence_no, newest.first_entry_id, newest.last_entry_id) == (2, later.id, later.id)
    assert newest.previous_hash == sealed[-1].batch_hash


def test_verify_finds_nothing_wrong_with_entries_not_sealed_yet(db):
    books = new_books(db)
    post(db, gift(books))
    assert problems_of(db, books.organisation_id) == []
    seal_pending(db)

    post(db, online_gift(books))

    assert problems_of(db, books.organisation_id) == []
    assert head_of(db, books.organisation_id)[0] == 1


def test_chain_head_moves_with_each_new_batch_and_each_batch_names_the_previous(db):
    books = new_books(db)
    assert head_of(db, books.organisation_id) is None
    post(db, gift(books))
    seal_pending(db)
    first = head_of(db, books.organisation_id)

    seal_pending(db)
    assert head_of(db, books.organisation_id) == first

    post(db, online_gift(books))
    seal_pending(db)
    second = head_of(db, books.organisation_id)

    assert second[0] == 2
    assert second[1] != first[1]
    assert [b.previous_hash for b in batches_of(db, books.organisation_id)] == ["0" * 64, first[1]]
    assert problems_of(db, books.organisation_id) == []


# --- tampering ----------------------------------------------------------------------------------------------


def sealed_books(db: Database) -> tuple[Books, PostedEntry]:
    """Fresh books with a few sealed entries; returns the online gift, whose first posting tests tamper with."""
    books = new_books(db)
    post(db, gift(books))
    target = post(db, online_gift(books))
    post(db, gift(books, 700))
    seal_pending(db)
    return books, target


def totals_problem(books: Books, account_id: int) -> Finding:
    return finding("total_mismatch", account_id=account_id, fund_id=books.open_fund, currency="CNY")


def month_problem(books: Books, account_id: int, day) -> Finding:
    month = (dt.date.fromisoformat(day) if isinstance(day, str) else day).replace(day=1).isoformat()
    return finding("month_total_mismatch", account_id=account_id, fund_id=books.open_fund, currency="CNY", month=month)


def row_problem(books: Books, kind: str, name: str, row_id: int) -> Finding:
    """A problem with one entry or posting of the organisation's first (and only) batch."""
    return finding(kind, organisation_id=books.organisation_id, batch=1, **{name: row_id})


def test_an_altered_posting_amount_is_found_with_its_posting_and_its_totals(db):
    books, target = sealed_books(db)
    bystander = new_books(db)
    post(db, gift(bystander))
    seal_pending(db)
    posting = first_posting(db, target.id)

    with guards_lifted(db, "postings", "update") as connection:
        connection.execute(text("UPDATE postings SET amount_minor = amount_minor + 1 WHERE id = :id"),
                           {"id": posting["id"]})

    # (The posting's day is its balances' last, whose totals are the balances' own: no day row differs.)
    assert problems_of(db, books.organisation_id) == sorted([
        row_problem(books, "posting_altered", "posting_id", posting["id"]),
        totals_problem(books, posting["debit_account_id"]),
        totals_problem(books, posting["credit_account_id"]),
        # (the months the public figures read, added by the store with the postings, disagree too)
        month_problem(books, posting["debit_account_id"], posting["effective_date"]),
        month_problem(books, posting["credit_account_id"], posting["effective_date"]),
    ])
    assert problems_of(db, bystander.organisation_id) == []
    with pytest.raises(IntegrityError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("UPDATE postings SET amount_minor = amount_minor + 1 WHERE id = :id"),
                           {"id": posting["id"]})


def test_a_deleted_sealed_posting_is_found(db):
    books, target = sealed_books(db)
    posting = first_posting(db, target.id)

    with guards_lifted(db, "postings", "delete") as connection:
        connection.execute(text("DELETE FROM postings WHERE id = :id"), {"id": posting["id"]})

    assert problems_of(db, books.organisation_id) == sorted([
        row_problem(books, "posting_missing", "posting_id", posting["id"]),
        totals_problem(books, posting["debit_account_id"]),
        totals_problem(books, posting["credit_account_id"]),
        month_problem(books, posting["debit_account_id"], posting["effective_date"]),
        month_problem(books, posting["credit_account_id"], posting["effective_date"]),
    ])


def test_an_edited_sealed_entry_is_found(db):
    books, target = sealed_books(db)

    with guards_lifted(db, "entries", "update") as connection:
        connection.execute(text("UPDATE entries SET description = 'nothing to see' WHERE id = :id"),
                           {"id": target.id})

    assert problems_of(db, books.organisation_id) == [row_problem(books, "entry_altered", "entry_id", target.id)]


def test_an_entry_slipped_into_sealed_history_is_found(db):
    books, spare = new_books(db), new_books(db)
    post(db, gift(books))
    hole = skip_an_entry_id(db, spare)
    post(db, gift(books))
    seal_pending(db)
    assert problems_of(db, books.organisation_id) == []

    with db.engine.begin() as connection:  # appending is allowed: only the seals can tell it came late
        connection.execute(text(
            "INSERT INTO entries (id, organisation_id, kind, effective_date, posted_at, description, "
            "idempotency_key, payload_digest, recorded_by) VALUES (:id, :org, 'journal', :day, :at, "
            "'backdated', :key, :digest, 'intruder')"),
            {"id": hole, "org": books.organisation_id, "day": particulars().effective_date,
             "at": "2026-11-02 00:00:00+00:00", "key": key("slipped"), "digest": "0" * 64})

    assert problems_of(db, books.organisation_id) == [row_problem(books, "entry_unsealed", "entry_id", hole)]


def test_an_inflated_cached_total_is_found(db):
    # The database lets cumulative totals grow (that is how postings add to them); only the check can tell
    # that no posting stands behind the growth.
    books, _ = sealed_books(db)
    bank = books.account(Role.BANK)

    with db.engine.begin() as connection:
        connection.execute(text("UPDATE balances SET debits_minor = debits_minor + 100 "
                                "WHERE account_id = :account AND fund_id = :fund"),
                           {"account": bank, "fund": books.open_fund})

    assert problems_of(db, books.organisation_id) == [totals_problem(books, bank)]


def test_a_balance_whose_last_day_is_not_its_latest_postings_is_found(db):
    """The last day is moved forward (the database refuses it only going back): the next entry dated before it would
    take the slow path for nothing, and one dated after would be right; the check still names the balance."""
    books = new_books(db)
    post(db, gift(books))
    bank = books.chart.account(Role.BANK)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE balances SET last_day = '2099-01-01' WHERE account_id = :account"),
                           {"account": bank})

    assert problems_of(db, books.organisation_id) == [
        finding("last_day_mismatch", account_id=bank, fund_id=books.open_fund, currency="CNY")]
