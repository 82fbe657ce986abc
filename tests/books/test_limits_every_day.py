"""A limit holds on every date, not only today: a backdated entry must not leave any account beyond its limit at
the end of any day from its date on (the transfer dated in September out of money received in November), in the
code and in the database; and a limit set later must hold over the whole history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from ledger.books.balances import days_of, trial_balance
from ledger.books.charts import set_account_limit
from ledger.books.entries import post_entries, post_entry
from ledger.books.integrity import verify_days
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.errors import AccountLimitExceeded, Conflict
from ledger.core.money import Money
from ledger.db.models import Balance, DayBalance
from tests.builders import key, new_books, particulars

SEP_30, NOV_2, NOV_10 = dt.date(2026, 9, 30), dt.date(2026, 11, 2), dt.date(2026, 11, 10)


def _gift(books, fund: int, amount: int, day: dt.date):
    return recipes.offline_donation(books.chart, fund, Money(amount, "CNY"), "bank", particulars(day, key()))


def _transfer(books, amount: int, day: dt.date):
    return recipes.transfer_between_funds(books.chart, books.restricted, books.open_fund, Money(amount, "CNY"),
                                          particulars(day, key()))


def _bank_days(db, books, fund: int) -> list[tuple[dt.date, int]]:
    with db.read() as session:
        days = days_of(session, books.account(Role.BANK), fund, "CNY")
    return [(day.day, day.debits_minor - day.credits_minor) for day in days]


def test_a_transfer_dated_before_the_money_arrived_is_refused_naming_the_day(db):
    books = new_books(db)
    db.write(lambda session: post_entry(session, _gift(books, books.restricted, 1_000, NOV_2)))

    with pytest.raises(AccountLimitExceeded) as refused:
        db.write(lambda session: post_entry(session, _transfer(books, 1_000, SEP_30)))

    assert refused.value.details["day"] == "2026-09-30" and refused.value.field == "postings"
    assert "on 2026-09-30" in refused.value.message
    with db.read() as session:
        as_of = trial_balance(session, books.organisation_id, books.restricted, SEP_30)
    assert as_of.lines == () or all(line.debits_minor == 0 for line in as_of.lines)
    assert _bank_days(db, books, books.restricted) == [(NOV_2, 1_000)]


def test_a_transfer_dated_after_the_money_arrived_passes_and_every_later_day_moves(db):
    books = new_books(db)
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 1_000, NOV_2),
                                                   _gift(books, books.restricted, 500, NOV_10)]))

    db.write(lambda session: post_entry(session, _transfer(books, 1_000, dt.date(2026, 11, 5))))
    with pytest.raises(AccountLimitExceeded) as refused:  # on 5 Nov nothing is left, though 500 came later
        db.write(lambda session: post_entry(session, _transfer(books, 1, dt.date(2026, 11, 6))))

    assert refused.value.details["day"] == "2026-11-06"
    assert _bank_days(db, books, books.restricted) == [(NOV_2, 1_000), (dt.date(2026, 11, 5), 0), (NOV_10, 500)]


def test_within_a_batch_the_days_are_judged_together(db):
    books = new_books(db)
    backdated_batch = [_transfer(books, 700, dt.date(2026, 11, 1)), _gift(books, books.restricted, 700, NOV_2)]

    with pytest.raises(AccountLimitExceeded) as refused:
        db.write(lambda session: post_entries(session, backdated_batch))
    accepted = db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 700, NOV_2),
                                                               _transfer(books, 700, NOV_2)]))

    assert refused.value.field == "entries[0].postings" and len(accepted) == 2
    assert _bank_days(db, books, books.restricted) == [(NOV_2, 0)]


def _two_days(db, books) -> None:
    """Gifts on 2 and 10 November: the 2nd's row is kept (the 10th's totals are the balance's)."""
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 1_000, NOV_2),
                                                   _gift(books, books.restricted, 500, NOV_10)]))


def test_the_database_refuses_a_day_beyond_its_account_s_limit(db):
    books = new_books(db)
    _two_days(db, books)

    with pytest.raises(IntegrityError, match="account_limit_exceeded"), db.engine.begin() as connection:
        connection.execute(update(DayBalance).where(DayBalance.fund_id == books.restricted)
                           .values(credits_minor=DayBalance.debits_minor + 1))

    with pytest.raises(IntegrityError, match="account_limit_exceeded"), db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor,"
            " credits_minor, balance_limit) VALUES (:account, :fund, 'CNY', '2026-11-20', :org, 1000, 1001,"
            " 'credits_must_not_exceed_debits')"),
            {"account": books.account(Role.BANK), "fund": books.restricted, "org": books.organisation_id})


def test_a_days_row_carries_its_accounts_limit_and_cannot_claim_another(db):
    """The guards judge a day on the limit its row carries: the database keeps it the account's (a foreign key), so
    a row cannot escape its guard by claiming no limit, and a change of the account's limit reaches every row."""
    books = new_books(db)
    _two_days(db, books)

    with pytest.raises(IntegrityError, match=r"(?i)foreign key"), db.engine.begin() as connection:
        connection.execute(update(DayBalance).where(DayBalance.fund_id == books.restricted)
                           .values(balance_limit="none", credits_minor=DayBalance.debits_minor + 1))
    with db.engine.begin() as connection:  # (a limit the books already keep: the change alone, as a cascade)
        connection.execute(text("UPDATE accounts SET balance_limit = 'none' WHERE id = :id"),
                           {"id": books.account(Role.BANK)})
        limits = connection.execute(select(DayBalance.balance_limit).where(
            DayBalance.account_id == books.account(Role.BANK))).scalars().all()
        balance_limits = connection.execute(select(Balance.balance_limit).where(
            Balance.account_id == books.account(Role.BANK))).scalars().all()
        connection.rollback()
    assert limits and set(limits) == {"none"} and balance_limits and set(balance_limits) == {"none"}


def test_a_balance_row_carries_its_accounts_limit_and_the_database_refuses_a_limit_it_breaks(db):
    """Each balance row carries its account's limit (a foreign key that cascades a change), so its guards are
    conditions on the row: a row cannot claim another limit, and a limit the balances break is refused by the
    database itself, whoever asks."""
    books = new_books(db)
    _two_days(db, books)
    bank = books.account(Role.BANK)

    with pytest.raises(IntegrityError, match=r"(?i)foreign key"), db.engine.begin() as connection:
        connection.execute(update(Balance).where(Balance.account_id == bank).values(balance_limit="none"))
    with pytest.raises(IntegrityError, match="account_limit_exceeded"), db.engine.begin() as connection:
        connection.execute(text("UPDATE accounts SET balance_limit = 'debits_must_not_exceed_credits' WHERE id = :id"),
                           {"id": bank})
    with db.read() as session:
        assert set(session.scalars(select(Balance.balance_limit).where(Balance.account_id == bank))) == {
            "credits_must_not_exceed_debits"}


def test_a_limit_set_later_holds_over_the_whole_history(db):
    books = new_books(db)
    bank = books.account(Role.BANK)
    db.write(lambda session: set_account_limit(session, books.organisation_id, bank, "none"))
    db.write(lambda session: post_entries(session, [_transfer(books, 300, NOV_2),
                                                   _gift(books, books.restricted, 300, NOV_10)]))

    with pytest.raises(Conflict) as refused:  # the fund's bank was below zero from 2 to 10 November
        db.write(lambda session: set_account_limit(session, books.organisation_id, bank,
                                                   "credits_must_not_exceed_debits"))

    assert refused.value.field == "balance_limit" and "end of a day" in refused.value.message
    assert _bank_days(db, books, books.restricted) == []  # no limit, no days kept
    with db.read() as session:
        assert session.execute(text("SELECT balance_limit FROM accounts WHERE id = :id"), {"id": bank}).scalar() \
            == "none"


def _without_day_guards(db, work) -> None:
    """Runs ``work(connection)`` with the daily rows' triggers off: books written before limits held every day."""
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            connection.execute(text("ALTER TABLE daily_balances DISABLE TRIGGER USER"))
            work(connection)
            connection.execute(text("ALTER TABLE daily_balances ENABLE TRIGGER USER"))
            return
        triggers = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                           "AND tbl_name = 'daily_balances'")).all()
        for name, _ in triggers:
            connection.execute(text(f"DROP TRIGGER {name}"))
        work(connection)
        for _, sql in triggers:
            connection.execute(text(sql))


def test_a_day_already_below_zero_takes_a_late_gift_but_not_a_deeper_payment(db):
    books = new_books(db)
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 2_000, NOV_10)]))

    def sept_below_zero(connection):  # as if a transfer had been posted in September before the rule existed
        connection.execute(text(
            "INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor,"
            " credits_minor, balance_limit) VALUES (:account, :fund, 'CNY', :day, :org, 0, 1000,"
            " 'credits_must_not_exceed_debits')"),
            {"account": books.account(Role.BANK), "fund": books.restricted, "day": SEP_30,
             "org": books.organisation_id})
    _without_day_guards(db, sept_below_zero)

    db.write(lambda session: post_entry(session, _gift(books, books.restricted, 100, dt.date(2026, 10, 2))))
    with pytest.raises(AccountLimitExceeded) as refused:
        db.write(lambda session: post_entry(session, _transfer(books, 1, dt.date(2026, 10, 3))))

    assert refused.value.details["day"] == "2026-10-03"
    assert _bank_days(db, books, books.restricted)[:2] == [(SEP_30, -1_000), (dt.date(2026, 10, 2), -900)]


def test_verify_recomputes_the_daily_totals_and_names_a_day_changed_behind_the_ledger(db):
    books = new_books(db)
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 1_000, NOV_2),
                                                   _gift(books, books.restricted, 500, NOV_10)]))
    with db.read() as session:
        assert verify_days(session, books.organisation_id) == []

    with db.engine.begin() as connection:
        connection.execute(update(DayBalance).where(DayBalance.fund_id == books.restricted, DayBalance.day == NOV_2)
                           .values(debits_minor=DayBalance.debits_minor + 1))

    with db.read() as session:
        [problem] = verify_days(session, books.organisation_id)
    assert problem.kind == "day_total_mismatch" and problem.ids["day"] == "2026-11-02"


def test_each_day_before_the_last_is_kept_once_whichever_way_the_books_move(db):
    """A balance's last day has no row (its totals are the balance's); each earlier day has one, written when a
    later day closes it or a backdated entry lands on it: one entry a day, a batch that moves on over two days, a
    batch on both sides of the last day, a backdated entry on a day between."""
    books = new_books(db)
    nov = [dt.date(2026, 11, day) for day in range(1, 13)]
    db.write(lambda session: post_entry(session, _gift(books, books.restricted, 100, nov[4])))
    db.write(lambda session: post_entry(session, _gift(books, books.restricted, 100, nov[4])))
    assert _stored_days(db, books) == []
    db.write(lambda session: post_entry(session, _gift(books, books.restricted, 200, nov[5])))
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 300, nov[7]),
                                                   _gift(books, books.restricted, 400, nov[8])]))
    db.write(lambda session: post_entries(session, [_gift(books, books.restricted, 10, nov[1]),
                                                   _gift(books, books.restricted, 20, nov[10])]))
    db.write(lambda session: post_entry(session, _transfer(books, 5, nov[6])))

    assert _bank_days(db, books, books.restricted) == [
        (nov[1], 10), (nov[4], 210), (nov[5], 410), (nov[6], 405), (nov[7], 705), (nov[8], 1_105),
        (nov[10], 1_125)]
    assert _stored_days(db, books) == [nov[1], nov[4], nov[5], nov[6], nov[7], nov[8]]
    with db.read() as session:
        assert verify_days(session, books.organisation_id) == []


def _stored_days(db, books) -> list[dt.date]:
    with db.read() as session:
        return list(session.execute(select(DayBalance.day).where(
            DayBalance.account_id == books.account(Role.BANK), DayBalance.fund_id == books.restricted)
            .order_by(DayBalance.day)).scalars())


def test_a_row_on_the_last_day_is_found_by_verify(db):
    books = new_books(db)
    _two_days(db, books)

    def copy_of_the_last_day(connection):
        connection.execute(text(
            "INSERT INTO daily_balances (account_id, fund_id, currency, day, organisation_id, debits_minor,"
            " credits_minor, balance_limit) VALUES (:account, :fund, 'CNY', :day, :org, 1500, 0,"
            " 'credits_must_not_exceed_debits')"),
            {"account": books.account(Role.BANK), "fund": books.restricted, "day": NOV_10,
             "org": books.organisation_id})
    _without_day_guards(db, copy_of_the_last_day)

    with db.read() as session:
        [problem] = verify_days(session, books.organisation_id)
    assert problem.kind == "day_total_mismatch" and problem.ids["day"] == "2026-11-10"
