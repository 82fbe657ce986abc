"""Properties of the stored ledger (STYLE.md): a reversal restores every balance exactly, and the trial
balance of every fund is zero after any sequence of recipes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.books.balances import balance, trial_balance
from ledger.books.entries import post_entry, reverse_entry
from ledger.books.integrity import verify_months, verify_totals
from ledger.core import recipes
from ledger.core.drafts import EntryDraft, PostedEntry
from ledger.core.errors import AccountLimitExceeded
from ledger.core.money import Money
from ledger.db.engine import Database
from ledger.db.models import Balance
from tests.builders import Books, key, new_books, particulars

CURRENCY = "CNY"
DAYS = (dt.date(2026, 1, 5), dt.date(2026, 1, 31), dt.date(2026, 2, 14), dt.date(2026, 3, 1))

# Each test builds fresh books per example, so a function-scoped ``db`` (which only picks the engine)
# is safe to share between examples.
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

RECIPES = ("bank_gift", "cash_gift", "online_gift", "in_kind_gift", "payout", "grant_approved", "grant_paid",
           "transfer", "bank_refund", "processor_refund", "release_from_restriction")

operations = st.tuples(
    st.sampled_from(RECIPES),
    st.integers(min_value=0, max_value=3),  # the fund
    st.integers(min_value=1, max_value=3),  # the other fund of a transfer, counted from the first
    st.integers(min_value=1, max_value=50_000),  # the amount
    st.integers(min_value=0, max_value=1_000),  # a fee
    st.sampled_from(DAYS),
)


def build(books: Books, operation) -> EntryDraft:
    """The draft of one operation drawn from ``operations``, on the given books."""
    name, fund_index, offset, amount_minor, fee_minor, day = operation
    funds = (books.general, books.open_fund, books.restricted, books.other)
    fund, other_fund = funds[fund_index], funds[(fund_index + offset) % len(funds)]
    amount, fee, chart, p = Money(amount_minor, CURRENCY), Money(fee_minor, CURRENCY), books.chart, particulars(day)
    makers = {
        "bank_gift": lambda: recipes.offline_donation(chart, fund, amount, "bank", p),
        "cash_gift": lambda: recipes.offline_donation(chart, fund, amount, "cash", p),
        "online_gift": lambda: recipes.online_donation(chart, fund, amount, fee, p),
        "in_kind_gift": lambda: recipes.in_kind_donation(chart, fund, amount, p),
        "payout": lambda: recipes.payout(chart, fund, amount, p),
        "grant_approved": lambda: recipes.grant_approved(chart, fund, amount, "charitable_activities", p),
        "grant_paid": lambda: recipes.grant_paid(chart, fund, amount, p),
        "transfer": lambda: recipes.transfer_between_funds(chart, fund, other_fund, amount, p),
        "bank_refund": lambda: recipes.refund(chart, fund, amount, "bank", p),
        "processor_refund": lambda: recipes.refund(chart, fund, amount, "processor", p, fee_returned=fee),
        "release_from_restriction": lambda: recipes.release_from_restriction(chart, fund, amount, p),
    }
    return makers[name]()


def post_if_allowed(db: Database, draft) -> PostedEntry | None:
    """Posts the draft; an account limit may refuse it (spending money a fund does not hold)."""
    try:
        return db.write(lambda session: post_entry(session, draft))
    except AccountLimitExceeded:
        return None


def run(db: Database, books: Books, history) -> list[PostedEntry]:
    posted = (post_if_allowed(db, build(books, operation)) for operation in history)
    return [entry for entry in posted if entry is not None]


def stored_totals(db: Database, organisation_id: int) -> dict[tuple[int, int], tuple[int, int]]:
    """Every (account, fund) of the organisation with its cumulative (debits, credits)."""
    with db.read() as session:
        rows = session.execute(select(Balance).where(Balance.organisation_id == organisation_id)).scalars()
        totals = {(row.account_id, row.fund_id): (row.debits_minor, row.credits_minor) for row in rows}
        for (account_id, fund_id), expected in totals.items():
            read = balance(session, account_id, fund_id, CURRENCY)
            assert (read.debits_minor, read.credits_minor) == expected
    return totals


def net(totals: dict[tuple[int, int], tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Debits minus credits of every (account, fund) that is not at zero."""
    return {k: debits - credits for k, (debits, credits) in totals.items() if debits != credits}


def effect(*entries: PostedEntry) -> dict[tuple[int, int], int]:
    """What the entries moved, net, per (account, fund) that they leave away from zero."""
    moved: Counter = Counter()
    for p in (p for entry in entries for p in entry.postings):
        moved[(p.debit_account_id, p.fund_id)] += p.amount_minor
        moved[(p.credit_account_id, p.fund_id)] -= p.amount_minor
    return {k: v for k, v in moved.items() if v}


def assert_every_fund_balances(db: Database, books: Books) -> None:
    with db.read() as session:
        for fund_id in (books.general, books.open_fund, books.restricted, books.other):
            for as_of in (None, *DAYS):
                trial = trial_balance(session, books.organisation_id, fund_id=fund_id, as_of=as_of)
                assert trial.is_balanced(), (fund_id, as_of, trial)
                assert all(debits == credits for debits, credits in trial.totals().values())
        assert trial_balance(session, books.organisation_id).is_balanced()
        assert verify_totals(session, books.organisation_id) == []
        assert verify_months(session, books.organisation_id) == []


@PROPERTY_SETTINGS
@given(history=st.lists(operations, max_size=15))
def test_every_funds_trial_balance_is_zero_after_any_sequence_of_recipes(db, history):
    books = new_books(db)
    accepted = run(db, books, history)
    assert_every_fund_balances(db, books)
    # The books hold exactly what the accepted entries moved, and nothing of the refused ones.
    assert net(stored_totals(db, books.organisation_id)) == effect(*accepted)


@PROPERTY_SETTINGS
@given(history=st.lists(operations, max_size=10), operation=operations)
def test_reversing_an_entry_at_once_restores_every_balance_exactly(db, history, operation):
    books = new_books(db)
    run(db, books, history)
    before = net(stored_totals(db, books.organisation_id))
    entry = post_if_allowed(db, build(books, operation))
    if entry is not None:
        # Undoing what was just done can break no limit: the reversal must be accepted.
        db.write(lambda session: reverse_entry(session, books.organisation_id, entry.id,
                                               idempotency_key=key("reversal"), recorded_by="tester"))
    assert net(stored_totals(db, books.organisation_id)) == before
    assert_every_fund_balances(db, books)


@PROPERTY_SETTINGS
@given(history=st.lists(operations, min_size=1, max_size=12), data=st.data())
def test_reversing_an_earlier_entry_takes_out_exactly_its_effect_or_nothing(db, history, data):
    books = new_books(db)
    accepted = run(db, books, history)
    if not accepted:
        return
    target = data.draw(st.sampled_from(accepted), label="entry to reverse")
    before = net(stored_totals(db, books.organisation_id))
    try:
        reversal = db.write(lambda session: reverse_entry(
            session, books.organisation_id, target.id, idempotency_key=key("reversal"), recorded_by="tester"))
    except AccountLimitExceeded:
        # Money received by the entry has been spent since: nothing may have changed.
        assert net(stored_totals(db, books.organisation_id)) == before
        return
    assert reversal.reverses_entry_id == target.id
    expected = Counter(before)
    expected.subtract(effect(target))
    assert net(stored_totals(db, books.organisation_id)) == {k: v for k, v in expected.items() if v}
    assert net(stored_totals(db, books.organisation_id)) == effect(*accepted, reversal)
    assert_every_fund_balances(db, books)
