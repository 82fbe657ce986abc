"""Posting, replaying and reversing entries, and reading the books back (on SQLite and PostgreSQL).

Expected figures are written from DESIGN.md §3 (which account each operation debits and credits), never
from the code under test, and are compared with what the balances, statements and trial balances say.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from sqlalchemy import func, select

from ledger.books.balances import Totals, account_statement, balance, balance_as_of, trial_balance
from ledger.books.charts import set_account_limit
from ledger.books.entries import get_entry, post_entries, post_entry, reverse_entry
from ledger.books.organisations import create_fund, set_fund_status
from ledger.books.periods import close_period
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import EntryDraft, PostedEntry
from ledger.core.errors import (
    AccountLimitExceeded,
    Conflict,
    EntryAlreadyReversed,
    IdempotencyKeyReused,
    NotFound,
    PeriodClosed,
)
from ledger.core.money import Money
from ledger.core.recipes import JournalLine
from ledger.db.engine import Database
from ledger.db.models import Account, Entry, Posting
from tests.builders import Books, balances_of, key, new_books, particulars

Key = tuple[int, int, str]  # (account id, fund id, currency)
NOV_2, NOV_10, NOV_20 = dt.date(2026, 11, 2), dt.date(2026, 11, 10), dt.date(2026, 11, 20)


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def post(db: Database, draft: EntryDraft) -> PostedEntry:
    return db.write(lambda session: post_entry(session, draft))


def row_counts(db: Database, organisation_id: int) -> tuple[int, int]:
    """(entries, postings) of the organisation."""
    with db.read() as session:
        entries = session.scalar(select(func.count()).where(Entry.organisation_id == organisation_id))
        postings = session.scalar(select(func.count()).where(Posting.organisation_id == organisation_id))
        return entries, postings


def net(balances: dict[Key, tuple[int, int]]) -> dict[Key, int]:
    """Debits minus credits per key, leaving out keys that net to zero."""
    return {k: d - c for k, (d, c) in balances.items() if d != c}


def changes(before: dict[Key, tuple[int, int]], after: dict[Key, tuple[int, int]]) -> dict[Key, tuple[int, int]]:
    result = {}
    for k in set(before) | set(after):
        (d0, c0), (d1, c1) = before.get(k, (0, 0)), after.get(k, (0, 0))
        if (d1 - d0, c1 - c0) != (0, 0):
            result[k] = (d1 - d0, c1 - c0)
    return result


Move = tuple[int, int, int, int]  # (fund, debit account, credit account, amount_minor), as in DESIGN.md §3


def totals_of(moves: list[Move], currency: str = "CNY") -> dict[Key, tuple[int, int]]:
    """The (debits, credits) that a list of postings adds to each balance."""
    totals: dict[Key, tuple[int, int]] = {}
    for fund, debit, credit, amount in moves:
        d, c = totals.get((debit, fund, currency), (0, 0))
        totals[(debit, fund, currency)] = (d + amount, c)
        d, c = totals.get((credit, fund, currency), (0, 0))
        totals[(credit, fund, currency)] = (d, c + amount)
    return totals


# --- each recipe --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipeCase:
    """A recipe, the entries that must exist before it (``funding``), and the postings DESIGN.md expects."""

    name: str
    build: Callable[[Books], EntryDraft]
    moves: Callable[[Books], list[Move]]
    funding: Callable[[Books], list[EntryDraft]] = field(default=lambda books: [])


def _gift(books: Books, amount_minor: int) -> EntryDraft:
    return recipes.offline_donation(books.chart, books.open_fund, cny(amount_minor), "bank", particulars())


def _online_gift(books: Books) -> EntryDraft:
    return recipes.online_donation(books.chart, books.open_fund, cny(10_000), cny(320), particulars())


def _approved(books: Books, amount_minor: int) -> EntryDraft:
    return recipes.grant_approved(books.chart, books.open_fund, cny(amount_minor), "charitable_activities",
                                  particulars())


R = Role
RECIPES = [
    RecipeCase(
        "offline bank gift",
        lambda b: recipes.offline_donation(b.chart, b.open_fund, cny(50_000), "bank", particulars()),
        lambda b: [(b.open_fund, b.account(R.BANK), b.account(R.DONATION_REVENUE), 50_000)]),
    RecipeCase(
        "offline cheque gift",
        lambda b: recipes.offline_donation(b.chart, b.open_fund, cny(7_000), "cheque", particulars()),
        lambda b: [(b.open_fund, b.account(R.BANK), b.account(R.DONATION_REVENUE), 7_000)]),
    RecipeCase(
        "offline cash gift",
        lambda b: recipes.offline_donation(b.chart, b.open_fund, cny(1_500), "cash", particulars()),
        lambda b: [(b.open_fund, b.account(R.CASH), b.account(R.DONATION_REVENUE), 1_500)]),
    RecipeCase(
        "online gift with fee",
        _online_gift,
        lambda b: [(b.open_fund, b.account(R.PROCESSOR_CLEARING), b.account(R.DONATION_REVENUE), 10_000),
                   (b.open_fund, b.account(R.PROCESSING_FEES), b.account(R.PROCESSOR_CLEARING), 320)]),
    RecipeCase(
        "online gift without fee",
        lambda b: recipes.online_donation(b.chart, b.open_fund, cny(10_000), cny(0), particulars()),
        lambda b: [(b.open_fund, b.account(R.PROCESSOR_CLEARING), b.account(R.DONATION_REVENUE), 10_000)]),
    RecipeCase(
        "payout of processor balance",
        lambda b: recipes.payout(b.chart, b.open_fund, cny(9_680), particulars()),
        lambda b: [(b.open_fund, b.account(R.BANK), b.account(R.PROCESSOR_CLEARING), 9_680)],
        lambda b: [_online_gift(b)]),
    RecipeCase(
        "processor fee",
        lambda b: recipes.processor_fee(b.chart, b.open_fund, cny(150), particulars()),
        lambda b: [(b.open_fund, b.account(R.PROCESSING_FEES), b.account(R.PROCESSOR_CLEARING), 150)],
        lambda b: [_online_gift(b)]),
    RecipeCase(
        "in-kind gift into inventory",
        lambda b: recipes.in_kind_donation(b.chart, b.open_fund, cny(8_000), particulars()),
        lambda b: [(b.open_fund, b.account(R.INVENTORY), b.account(R.IN_KIND_REVENUE), 8_000)]),
    RecipeCase(
        "in-kind gift consumed at once",
        lambda b: recipes.in_kind_donation(b.chart, b.open_fund, cny(8_000), particulars(), consumed_at_once=True),
        lambda b: [(b.open_fund, b.account(R.PROGRAM_EXPENSE), b.account(R.IN_KIND_REVENUE), 8_000)]),
    RecipeCase(
        "refund from the bank",
        lambda b: recipes.refund(b.chart, b.open_fund, cny(5_000), "bank", particulars()),
        lambda b: [(b.open_fund, b.account(R.DONATION_REVENUE), b.account(R.BANK), 5_000)],
        lambda b: [_gift(b, 20_000)]),
    RecipeCase(
        "refund through the processor with its fee returned",
        lambda b: recipes.refund(b.chart, b.open_fund, cny(10_000), "processor", particulars(),
                                 fee_returned=cny(320)),
        lambda b: [(b.open_fund, b.account(R.DONATION_REVENUE), b.account(R.PROCESSOR_CLEARING), 10_000),
                   (b.open_fund, b.account(R.PROCESSOR_CLEARING), b.account(R.PROCESSING_FEES), 320)],
        lambda b: [_online_gift(b)]),
    *[RecipeCase(
        f"grant approved for {category}",
        lambda b, category=category: recipes.grant_approved(b.chart, b.open_fund, cny(30_000), category,
                                                            particulars()),
        lambda b, role=role: [(b.open_fund, b.account(role), b.account(R.GRANTS_PAYABLE), 30_000)])
      for category, role in (("charitable_activities", R.PROGRAM_EXPENSE), ("management", R.MANAGEMENT_EXPENSE),
                             ("fundraising", R.FUNDRAISING_EXPENSE))],
    RecipeCase(
        "grant paid",
        lambda b: recipes.grant_paid(b.chart, b.open_fund, cny(30_000), particulars()),
        lambda b: [(b.open_fund, b.account(R.GRANTS_PAYABLE), b.account(R.BANK), 30_000)],
        lambda b: [_gift(b, 50_000), _approved(b, 30_000)]),
    RecipeCase(
        "transfer between funds",
        lambda b: recipes.transfer_between_funds(b.chart, b.open_fund, b.other, cny(25_000), particulars()),
        lambda b: [(b.open_fund, b.account(R.TRANSFERS_OUT), b.account(R.BANK), 25_000),
                   (b.other, b.account(R.BANK), b.account(R.TRANSFERS_IN), 25_000)],
        lambda b: [_gift(b, 40_000)]),
    RecipeCase(
        "release from restriction",
        lambda b: recipes.release_from_restriction(b.chart, b.restricted, cny(12_000), particulars()),
        lambda b: [(b.restricted, b.account(R.RESTRICTED_NET_ASSETS), b.account(R.UNRESTRICTED_NET_ASSETS), 12_000)]),
    RecipeCase(
        "journal entry",
        lambda b: recipes.journal_entry(b.chart, [
            JournalLine(b.account(R.BANK), b.open_fund, "debit", cny(7_000)),
            JournalLine(b.account(R.DONATION_REVENUE), b.open_fund, "credit", cny(4_000)),
            JournalLine(b.chart.by_code["4901"], b.open_fund, "credit", cny(3_000)),
        ], particulars()),
        lambda b: [(b.open_fund, b.account(R.BANK), b.account(R.DONATION_REVENUE), 4_000),
                   (b.open_fund, b.account(R.BANK), b.chart.by_code["4901"], 3_000)]),
]


@pytest.mark.parametrize("case", RECIPES, ids=lambda case: case.name)
def test_each_recipe_changes_exactly_the_balances_its_postings_name(db, case):
    books = new_books(db)
    for draft in case.funding(books):
        post(db, draft)
    before = balances_of(db, books.organisation_id)

    entry = post(db, case.build(books))

    after = balances_of(db, books.organisation_id)
    assert changes(before, after) == totals_of(case.moves(books))
    with db.read() as session:
        for (account, fund, currency), (debits, credits) in after.items():
            assert balance(session, account, fund, currency) == Totals(debits, credits, currency)
        assert get_entry(session, books.organisation_id, entry.id).postings == entry.postings


# --- idempotency --------------------------------------------------------------------------------------------


def test_replaying_a_key_with_the_same_content_returns_the_first_entry_and_changes_nothing(db):
    books = new_books(db)
    draft = _gift(books, 10_000)
    first = post(db, draft)
    before = balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)

    again = post(db, draft)

    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert again.postings == first.postings
    assert (balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)) == before


def test_a_retry_recorded_by_another_worker_is_still_a_replay(db):
    books = new_books(db)
    draft = _gift(books, 10_000)
    first = post(db, draft)

    again = post(db, replace(draft, recorded_by="another-worker@example.org"))

    assert (again.id, again.replayed) == (first.id, True)
    assert row_counts(db, books.organisation_id) == (1, 1)


def test_reusing_a_key_for_other_content_is_refused_and_writes_nothing(db):
    books = new_books(db)
    draft = _gift(books, 10_000)
    first = post(db, draft)
    before = balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)

    with pytest.raises(IdempotencyKeyReused) as refused:
        post(db, replace(draft, postings=(replace(draft.postings[0], amount_minor=20_000),)))

    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "idempotency_key")
    assert refused.value.details["entry_id"] == first.id
    assert (balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)) == before


def test_a_batch_that_repeats_a_key_is_refused_and_writes_nothing(db):
    books = new_books(db)
    repeated = key("twice")
    drafts = [replace(_gift(books, 1_000), idempotency_key=k) for k in (key(), repeated, repeated)]

    with pytest.raises(IdempotencyKeyReused) as refused:
        db.write(lambda session: post_entries(session, drafts))

    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "entries[2].idempotency_key")
    assert balances_of(db, books.organisation_id) == {}
    assert row_counts(db, books.organisation_id) == (0, 0)


def test_a_batch_mixing_a_replay_and_new_entries_posts_only_the_new_ones(db):
    books = new_books(db)
    earlier = _gift(books, 1_000)
    first = post(db, earlier)

    results = db.write(lambda session: post_entries(session, [_gift(books, 2_000), earlier, _gift(books, 4_000)]))

    assert [r.replayed for r in results] == [False, True, False]
    assert results[1].id == first.id
    assert len({r.id for r in results}) == 3
    bank = (books.account(Role.BANK), books.open_fund, "CNY")
    assert balances_of(db, books.organisation_id)[bank] == (7_000, 0)
    assert row_counts(db, books.organisation_id) == (3, 3)


def _close_october(db: Database, books: Books) -> None:
    db.write(lambda session: close_period(session, books.organisation_id, 2026, 10, "closer@example.org"))


def _close_open_fund(db: Database, books: Books) -> None:
    db.write(lambda session: set_fund_status(session, books.organisation_id, books.open_fund, "closed"))


@pytest.mark.parametrize("close", [_close_october, _close_open_fund], ids=["period closed", "fund closed"])
def test_a_replay_after_the_period_or_fund_closed_still_returns_the_first_entry(db, close):
    # DESIGN.md invariant 4: a processor event is applied once, however often (and however late) it arrives.
    books = new_books(db)
    draft = recipes.offline_donation(books.chart, books.open_fund, cny(10_000), "bank",
                                     particulars(dt.date(2026, 10, 5)))
    first = post(db, draft)
    close(db, books)

    again = post(db, draft)

    assert (again.id, again.replayed) == (first.id, True)


# --- reversals ----------------------------------------------------------------------------------------------


def _transfer(books: Books, amount_minor: int = 25_000) -> EntryDraft:
    return recipes.transfer_between_funds(books.chart, books.open_fund, books.other, cny(amount_minor),
                                          particulars())


def _reverse(db: Database, books: Books, entry_id: int, idempotency_key: str) -> PostedEntry:
    return db.write(lambda session: reverse_entry(session, books.organisation_id, entry_id,
                                                  idempotency_key=idempotency_key, recorded_by="auditor"))


def test_reversing_an_entry_restores_every_balance_and_names_the_reversed_entry(db):
    books = new_books(db)
    post(db, _gift(books, 40_000))
    before = net(balances_of(db, books.organisation_id))
    original = post(db, _transfer(books))
    assert net(balances_of(db, books.organisation_id)) != before

    reversal = _reverse(db, books, original.id, key("reverse"))

    assert net(balances_of(db, books.organisation_id)) == before
    assert (reversal.kind, reversal.reverses_entry_id) == ("reversal", original.id)
    assert reversal.postings == tuple(
        replace(p, debit_account_id=p.credit_account_id, credit_account_id=p.debit_account_id)
        for p in original.postings)
    with db.read() as session:
        assert get_entry(session, books.organisation_id, reversal.id).reverses_entry_id == original.id


def test_reversing_an_entry_twice_is_refused_and_writes_nothing(db):
    books = new_books(db)
    original = post(db, _gift(books, 10_000))
    first = _reverse(db, books, original.id, key("reverse"))
    before = balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)

    with pytest.raises(EntryAlreadyReversed) as refused:
        _reverse(db, books, original.id, key("reverse-again"))

    assert (refused.value.code, refused.value.field) == ("entry_already_reversed", "entry_id")
    assert refused.value.details["reversal_entry_id"] == first.id
    assert (balances_of(db, books.organisation_id), row_counts(db, books.organisation_id)) == before


def test_retrying_a_reversal_with_its_key_returns_the_same_reversal(db):
    books = new_books(db)
    original = post(db, _gift(books, 10_000))
    reverse_key = key("reverse")
    first = _reverse(db, books, original.id, reverse_key)

    again = _reverse(db, books, original.id, reverse_key)

    assert (again.id, again.replayed) == (first.id, True)
    assert row_counts(db, books.organisation_id) == (2, 2)


def test_reversing_another_organisations_entry_is_not_found(db):
    books, stranger = new_books(db), new_books(db)
    original = post(db, _gift(books, 10_000))

    with pytest.raises(NotFound) as refused:
        _reverse(db, stranger, original.id, key("reverse"))

    assert (refused.value.code, refused.value.field) == ("not_found", "entry_id")
    assert row_counts(db, stranger.organisation_id) == (0, 0)
    assert row_counts(db, books.organisation_id) == (1, 1)


# --- batches ------------------------------------------------------------------------------------------------


def test_a_500_entry_batch_with_one_limit_breach_writes_nothing(db):
    books = new_books(db)
    drafts = [_gift(books, 1_000 + index) for index in range(500)]
    # Paying a grant that was never approved overdraws grants payable; the bank holds plenty.
    drafts[317] = recipes.grant_paid(books.chart, books.open_fund, cny(2_000), particulars())

    with pytest.raises(AccountLimitExceeded) as refused:
        db.write(lambda session: post_entries(session, drafts))

    assert (refused.value.code, refused.value.field) == ("account_limit_exceeded", "entries[317].postings")
    assert refused.value.details["account_id"] == books.account(Role.GRANTS_PAYABLE)
    assert refused.value.details["shortfall_minor"] == 2_000
    assert balances_of(db, books.organisation_id) == {}
    assert row_counts(db, books.organisation_id) == (0, 0)

    valid = drafts[:317] + drafts[318:]
    posted = db.write(lambda session: post_entries(session, valid))
    assert len({entry.id for entry in posted}) == 499
    assert row_counts(db, books.organisation_id) == (499, 499)
    bank = (books.account(Role.BANK), books.open_fund, "CNY")
    assert balances_of(db, books.organisation_id)[bank] == (sum(d.postings[0].amount_minor for d in valid), 0)


def test_a_batch_limit_breach_names_the_entry_that_overdraws_not_the_first_that_touched_the_account(db):
    books = new_books(db)
    payment = recipes.grant_paid(books.chart, books.open_fund, cny(5_000), particulars())
    drafts = [_gift(books, 1_000), _approved(books, 5_000), payment]

    with pytest.raises(AccountLimitExceeded) as refused:
        db.write(lambda session: post_entries(session, drafts))

    assert refused.value.details["account_id"] == books.account(Role.BANK)
    assert refused.value.field == "entries[2].postings"
    assert refused.value.details["idempotency_key"] == payment.idempotency_key


def test_posting_an_empty_batch_returns_no_entries_and_writes_nothing(db):
    books = new_books(db)

    assert db.write(lambda session: post_entries(session, [])) == []
    assert row_counts(db, books.organisation_id) == (0, 0)


# --- reading back -------------------------------------------------------------------------------------------


def _dated_gift(books: Books, fund: int, amount_minor: int, day: dt.date) -> EntryDraft:
    return recipes.offline_donation(books.chart, fund, cny(amount_minor), "bank", particulars(day))


def test_balance_as_of_counts_only_postings_effective_on_or_before_the_date(db):
    books = new_books(db)
    # Posted out of date order: the effective date decides, not the posting order.
    for fund, amount, day in ((books.open_fund, 300, NOV_20), (books.open_fund, 100, NOV_2),
                              (books.other, 1_000, NOV_10), (books.open_fund, 20, NOV_10)):
        post(db, _dated_gift(books, fund, amount, day))
    bank = books.account(Role.BANK)

    with db.read() as session:
        def as_of(day: dt.date, fund: int | None = None) -> Totals:
            return balance_as_of(session, bank, "CNY", day, fund_id=fund)

        assert as_of(dt.date(2026, 11, 1)) == Totals(0, 0, "CNY")
        assert as_of(NOV_2) == Totals(100, 0, "CNY")
        assert as_of(NOV_10, books.open_fund) == Totals(120, 0, "CNY")
        assert as_of(NOV_10) == Totals(1_120, 0, "CNY")
        assert as_of(NOV_20, books.open_fund) == balance(session, bank, books.open_fund, "CNY")
        assert as_of(NOV_20) == Totals(1_420, 0, "CNY")


def _statement_books(db: Database) -> Books:
    """Books whose bank account has 23 postings over several dates, several on one date, in two funds."""
    books = new_books(db)
    days = [NOV_20, NOV_2, NOV_10, NOV_10, dt.date(2026, 11, 5), NOV_2]
    drafts = [_dated_gift(books, books.open_fund if i % 3 else books.other, 500 + 7 * i, days[i % len(days)])
              for i in range(20)]
    drafts += [recipes.grant_approved(books.chart, books.open_fund, cny(900), "charitable_activities",
                                      particulars(NOV_10)),
               recipes.grant_paid(books.chart, books.open_fund, cny(900), particulars(NOV_10)),
               recipes.transfer_between_funds(books.chart, books.open_fund, books.other, cny(250),
                                              particulars(NOV_2))]
    db.write(lambda session: post_entries(session, drafts))
    return books


def _all_pages(db: Database, books: Books, fund: int | None, limit: int):
    pages, after = [], None
    with db.read() as session:
        while True:
            page = account_statement(session, books.organisation_id, books.account(Role.BANK), "CNY",
                                     fund_id=fund, after=after, limit=limit)
            pages.append(page)
            if page.next_cursor is None:
                return pages
            after = page.next_cursor


def _bank_posting_ids(db: Database, books: Books, fund: int | None) -> list[int]:
    bank = books.account(Role.BANK)
    query = select(Posting.id).where((Posting.debit_account_id == bank) | (Posting.credit_account_id == bank))
    if fund is not None:
        query = query.where(Posting.fund_id == fund)
    with db.read() as session:
        return list(session.scalars(query.order_by(Posting.effective_date, Posting.id)))


@pytest.mark.parametrize("in_one_fund", [True, False], ids=["one fund", "all funds"])
def test_statement_pages_chained_by_cursor_give_every_line_once_and_end_at_the_balance(db, in_one_fund):
    books = _statement_books(db)
    fund = books.open_fund if in_one_fund else None

    pages = _all_pages(db, books, fund, limit=4)

    lines = [line for page in pages for line in page.lines]
    assert [line.posting_id for line in lines] == _bank_posting_ids(db, books, fund)
    assert all(len(page.lines) == 4 for page in pages[:-1])
    assert 1 <= len(pages[-1].lines) <= 4
    assert pages[0].opening_balance_minor == 0
    for previous, page in itertools.pairwise(pages):
        assert page.opening_balance_minor == previous.lines[-1].balance_minor
    funds = [fund] if in_one_fund else [books.open_fund, books.other]
    with db.read() as session:
        current = sum(balance(session, books.account(Role.BANK), f, "CNY").balance_minor("debit") for f in funds)
    assert lines[-1].balance_minor == current


def test_a_statement_between_two_dates_opens_at_the_balance_of_the_day_before(db):
    books = _statement_books(db)
    bank = books.account(Role.BANK)

    with db.read() as session:
        page = account_statement(session, books.organisation_id, bank, "CNY", fund_id=books.open_fund,
                                 date_from=dt.date(2026, 11, 5), date_to=NOV_10, limit=1_000)
        opening = balance_as_of(session, bank, "CNY", dt.date(2026, 11, 4), fund_id=books.open_fund)
        closing = balance_as_of(session, bank, "CNY", NOV_10, fund_id=books.open_fund)

    assert page.lines
    assert page.next_cursor is None
    assert {line.effective_date for line in page.lines} <= {dt.date(2026, 11, 5), NOV_10}
    assert page.opening_balance_minor == opening.balance_minor("debit")
    assert page.lines[-1].balance_minor == closing.balance_minor("debit")


@dataclass
class _TrialBooks:
    books: Books
    usd_fund: int
    dated_moves: list[tuple[dt.date, Move, str]]


def _trial_books(db: Database) -> _TrialBooks:
    """Books with activity in two CNY funds and one USD fund over three dates, and the postings expected."""
    books = new_books(db)
    usd_fund = db.write(lambda session: create_fund(session, books.organisation_id, code="USD1", name="USD fund",
                                                    kind="project", restricted=True, currency="USD")).id
    b = books
    bank, revenue, program, payable, t_in, t_out = (b.account(r) for r in (
        R.BANK, R.DONATION_REVENUE, R.PROGRAM_EXPENSE, R.GRANTS_PAYABLE, R.TRANSFERS_IN, R.TRANSFERS_OUT))
    dated = [
        (NOV_2, (b.open_fund, bank, revenue, 60_000), "CNY"),
        (NOV_2, (usd_fund, bank, revenue, 5_000), "USD"),
        (NOV_10, (b.open_fund, t_out, bank, 20_000), "CNY"),
        (NOV_10, (b.other, bank, t_in, 20_000), "CNY"),
        (NOV_20, (b.other, program, payable, 15_000), "CNY"),
        (NOV_20, (b.other, payable, bank, 12_000), "CNY"),
    ]
    post(db, _dated_gift(b, b.open_fund, 60_000, NOV_2))
    post(db, recipes.offline_donation(b.chart, usd_fund, Money(5_000, "USD"), "bank", particulars(NOV_2)))
    post(db, recipes.transfer_between_funds(b.chart, b.open_fund, b.other, cny(20_000), particulars(NOV_10)))
    post(db, recipes.grant_approved(b.chart, b.other, cny(15_000), "charitable_activities", particulars(NOV_20)))
    post(db, recipes.grant_paid(b.chart, b.other, cny(12_000), particulars(NOV_20)))
    return _TrialBooks(books, usd_fund, dated)


@pytest.mark.parametrize("as_of", [None, NOV_10, dt.date(2026, 11, 1)], ids=["now", "as of Nov 10", "before all"])
@pytest.mark.parametrize("scope", ["organisation", "open_fund", "other", "usd_fund"])
def test_trial_balance_shows_each_accounts_totals_and_balances_per_currency(db, scope, as_of):
    trial = _trial_books(db)
    books = trial.books
    fund = {"organisation": None, "open_fund": books.open_fund, "other": books.other,
            "usd_fund": trial.usd_fund}[scope]
    expected: dict[tuple[int, str], tuple[int, int]] = {}
    for day, move, currency in trial.dated_moves:
        if (fund is None or move[0] == fund) and (as_of is None or day <= as_of):
            for (account, _fund, cur), (d, c) in totals_of([move], currency).items():
                d0, c0 = expected.get((account, cur), (0, 0))
                expected[(account, cur)] = (d0 + d, c0 + c)

    with db.read() as session:
        report = trial_balance(session, books.organisation_id, fund_id=fund, as_of=as_of)

    assert {(line.account_id, line.currency): (line.debits_minor, line.credits_minor)
            for line in report.lines} == expected
    assert report.is_balanced()
    for currency, (debit_balances, credit_balances) in report.totals().items():
        assert debit_balances == credit_balances > 0, currency
    assert (report.fund_id, report.as_of) == (fund, as_of)


def test_a_trial_balance_for_another_organisations_fund_is_not_found(db):
    books, stranger = new_books(db), new_books(db)

    with db.read() as session, pytest.raises(NotFound) as refused:
        trial_balance(session, books.organisation_id, fund_id=stranger.open_fund)

    assert (refused.value.code, refused.value.field) == ("not_found", "fund_id")



def _limit_of(db: Database, account_id: int) -> str:
    with db.read() as session:
        return session.get(Account, account_id).balance_limit


def test_a_limit_that_a_balance_already_breaks_is_refused_and_a_new_limit_holds_from_then_on(db):
    books = new_books(db)
    revenue = books.account(Role.DONATION_REVENUE)
    post(db, _gift(books, 10_000))  # donation revenue now carries a credit balance of 10,000 in the fund

    def set_limit(limit: str):
        return db.write(lambda session: set_account_limit(session, books.organisation_id, revenue, limit))

    with pytest.raises(Conflict) as refused:
        set_limit("credits_must_not_exceed_debits")
    assert refused.value.field == "balance_limit"
    assert _limit_of(db, revenue) == "none"

    set_limit("debits_must_not_exceed_credits")
    overdrawn = recipes.journal_entry(books.chart, [
        JournalLine(revenue, books.open_fund, "debit", cny(10_001)),
        JournalLine(books.account(Role.PROGRAM_EXPENSE), books.open_fund, "credit", cny(10_001)),
    ], particulars())
    with pytest.raises(AccountLimitExceeded) as breach:
        post(db, overdrawn)

    assert breach.value.details["account_id"] == revenue
    assert _limit_of(db, revenue) == "debits_must_not_exceed_credits"
    with pytest.raises(NotFound):
        db.write(lambda session: set_account_limit(session, books.organisation_id, 10**9, "none"))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_entry_in_a_closed_month_is_refused_by_the_ledger_naming_the_period(db, batch_size):
    """The ledger refuses it before writing, naming the month closed; the database's trigger, which holds the
    same rule against a close that commits mid-write, could only say that some period was closed."""
    books = new_books(db)
    db.write(lambda session: close_period(session, books.organisation_id, 2026, 10, "closer@example.org"))
    drafts = [recipes.offline_donation(books.chart, books.open_fund, Money(100 + n, "CNY"), "bank",
                                       particulars(day=dt.date(2026, 10, 20 + n))) for n in range(batch_size)]
    before = balances_of(db, books.organisation_id)

    with pytest.raises(PeriodClosed) as refused:
        db.write(lambda session: post_entries(session, drafts))

    assert refused.value.message == "the period 2026-10-01 to 2026-10-31 is closed"
    assert refused.value.field == ("effective_date" if batch_size == 1 else "entries[0].effective_date")
    assert refused.value.details == {"period_start": "2026-10-01", "period_end": "2026-10-31"}
    assert balances_of(db, books.organisation_id) == before
