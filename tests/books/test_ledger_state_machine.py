"""The ledger against a model of itself: random valid and invalid operations through the real services.

A hypothesis state machine drives recipes, reversals, replays, fund and period closing, and requests
that must be refused, through ``Database.write`` on a real database (SQLite always, PostgreSQL when
TEST_DATABASE_URL is set). Beside it runs a model: per (account, fund) the debits and credits the ledger
should hold, which funds and months are closed, and which entries exist. Before each operation the model
predicts whether the ledger accepts it and, if not, with which error codes it may refuse; after each
operation the invariants of DESIGN.md §4 are checked on the stored books:

(i) every fund's trial balance is zero, (ii) the cached totals equal the sum of the postings, (iii) every
(account, fund) balance is exactly the model's, and a refused operation wrote nothing at all.

Where several rules are broken at once the ledger may name any one of them, so the model predicts a set
of codes; whether an operation is accepted is predicted exactly.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.books.balances import balance, trial_balance
from ledger.books.entries import post_entry, reverse_entry
from ledger.books.integrity import verify_months, verify_totals
from ledger.books.organisations import set_fund_status
from ledger.books.periods import close_period, reopen_period
from ledger.core import recipes
from ledger.core.chart import CHINA_NONPROFIT, BalanceLimit, Role
from ledger.core.drafts import MAX_POSTINGS_PER_ENTRY, EntryDraft, PostedEntry, PostingDraft
from ledger.core.errors import LedgerError
from ledger.core.money import MAX_AMOUNT_MINOR, Money
from ledger.core.recipes import Particulars
from ledger.db.engine import Database
from ledger.db.models import Balance, Entry, Posting
from tests.builders import key, new_books

CURRENCY = "CNY"
RECORDED_BY = "machine@example.org"
MONTHS = ((2026, 1), (2026, 2), (2026, 3))
# The first, a middle and the last day of each month, so that closing a month is tested at its edges.
DAYS = tuple(dt.date(year, month, day) for year, month in MONTHS
             for day in (1, 15, calendar.monthrange(year, month)[1]))
FUND_COUNT = 4  # the general fund and the three community funds of tests.builders.Books

LIMITS = {line.code: line.balance_limit for line in CHINA_NONPROFIT}

fund_indexes = st.integers(min_value=0, max_value=FUND_COUNT - 1)
days = st.sampled_from(DAYS)
amounts = st.integers(min_value=1, max_value=20_000)

MACHINE_SETTINGS = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@functools.cache
def stranger_fund(db: Database) -> int:
    """The general fund of another organisation, shared by every run on this database."""
    return new_books(db).general


@dataclass
class ModelEntry:
    """An entry the model knows the ledger holds, and how to send the very same request again."""

    entry_id: int
    idempotency_key: str
    effective_date: dt.date
    postings: tuple[PostingDraft, ...]
    replay: Callable[[Session], PostedEntry]
    reversed_by_key: str | None = None


def count(session: Session, column, condition) -> int:
    return session.execute(select(func.count(column)).where(condition)).scalar_one()


def mirror(postings: tuple[PostingDraft, ...]) -> tuple[PostingDraft, ...]:
    return tuple(PostingDraft(p.fund_id, p.credit_account_id, p.debit_account_id, p.amount_minor, p.currency)
                 for p in postings)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        books = new_books(db, CURRENCY)
        self.organisation_id = books.organisation_id
        self.chart = books.chart
        self.funds = (books.general, books.open_fund, books.restricted, books.other)
        self.stranger_fund = stranger_fund(db)
        self.limits = {self.chart.by_code[code]: limit for code, limit in LIMITS.items()}
        self.fund_status = dict.fromkeys(self.funds, "open")
        self.closed_months: set[tuple[int, int]] = set()
        self.totals: dict[tuple[int, int], tuple[int, int]] = {}  # (account, fund) → (debits, credits)
        self.entries: list[ModelEntry] = []
        self.last_aimed_at: set[tuple[int, int]] = set()  # the (account, fund)s of the latest request

    # --- the model ----------------------------------------------------------------------------------------

    def account(self, role: Role) -> int:
        return self.chart.account(role)

    def debit_balance(self, role: Role, fund: int) -> int:
        debits, credits = self.totals.get((self.account(role), fund), (0, 0))
        return debits - credits

    def aim_at(self, postings: tuple[PostingDraft, ...]) -> None:
        """Remembers the (account, fund)s a request aims at: the next invariant check reads them."""
        self.last_aimed_at = {(account, p.fund_id) for p in postings
                              for account in (p.debit_account_id, p.credit_account_id)}

    def refusals(self, day: dt.date, postings: tuple[PostingDraft, ...]) -> set[str]:
        """Every rule the postings would break if posted now, as error codes."""
        reasons = set()
        if (day.year, day.month) in self.closed_months:
            reasons.add("period_closed")
        for p in postings:
            if p.fund_id not in self.fund_status:
                reasons.add("organisation_mismatch")
            elif self.fund_status[p.fund_id] == "closed":
                reasons.add("fund_closed")
            if p.currency != CURRENCY:
                reasons.add("currency_mismatch")
        if self.breaks_a_limit(day, postings):
            reasons.add("account_limit_exceeded")
        return reasons

    def totals_after(self, postings: tuple[PostingDraft, ...]) -> dict[tuple[int, int], tuple[int, int]]:
        after = {}
        for p in postings:
            for account, side in ((p.debit_account_id, 0), (p.credit_account_id, 1)):
                totals = list(after.get((account, p.fund_id), self.totals.get((account, p.fund_id), (0, 0))))
                totals[side] += p.amount_minor
                after[(account, p.fund_id)] = tuple(totals)
        return after

    def breaks_a_limit(self, day: dt.date, postings: tuple[PostingDraft, ...]) -> bool:
        """Whether any limited (account, fund) the postings touch ends beyond its limit (chart.BalanceLimit) now,
        or at the end of any day from ``day`` on: a limit holds on every date, so a backdated entry is judged
        on every later day the books hold."""
        touched = {(account, p.fund_id) for p in postings for account in (p.debit_account_id, p.credit_account_id)
                   if self.limits[account] != BalanceLimit.NONE}
        history = [(entry.effective_date, entry.postings) for entry in self.entries] + [(day, postings)]
        for account, fund in touched:
            for last in sorted({when for when, _ in history if when >= day}):
                debits = sum(p.amount_minor for when, moved in history if when <= last for p in moved
                             if p.fund_id == fund and p.debit_account_id == account)
                credits = sum(p.amount_minor for when, moved in history if when <= last for p in moved
                              if p.fund_id == fund and p.credit_account_id == account)
                if self.limits[account] == BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS and credits > debits:
                    return True
                if self.limits[account] == BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS and debits > credits:
                    return True
        return False

    def record(self, posted: PostedEntry, replay: Callable[[Session], PostedEntry]) -> ModelEntry:
        self.totals.update(self.totals_after(posted.postings))
        entry = ModelEntry(posted.id, posted.idempotency_key, posted.effective_date, posted.postings, replay)
        self.entries.append(entry)
        return entry

    # --- talking to the ledger --------------------------------------------------------------------------

    def attempt(self, work: Callable[[Session], PostedEntry], refusals: set[str]) -> PostedEntry | None:
        """Runs ``work`` in one write transaction; it must be refused with one of ``refusals``, or
        accepted when there are none."""
        try:
            result = self.db.write(work)
        except LedgerError as error:
            event(f"refused: {error.code}")
            assert refusals, f"the ledger refused what the model accepts: {error}"
            assert error.code in refusals, f"refused with {error}; the model expected one of {sorted(refusals)}"
            return None
        assert not refusals, f"the ledger accepted what the model refuses with {sorted(refusals)}"
        event("accepted")
        return result

    def post(self, draft: EntryDraft, refusals: set[str] | None = None) -> None:
        """Posts a draft; unless told otherwise, the model predicts from the draft's postings."""
        self.aim_at(draft.postings)
        if refusals is None:
            refusals = self.refusals(draft.effective_date, draft.postings)
        posted = self.attempt(lambda session: post_entry(session, draft), refusals)
        if posted is not None:
            assert not posted.replayed
            assert posted.postings == draft.postings
            self.record(posted, lambda session: post_entry(session, draft))

    def particulars(self, day: dt.date, idempotency_key: str | None = None,
                    description: str = "machine entry") -> Particulars:
        return Particulars(day, idempotency_key or key("machine"), RECORDED_BY, description)

    def fund_holding(self, data, role: Role) -> int:
        """A fund to spend from: mostly one whose account of this role is away from zero, if there is one,
        so that spending meets the limits of accounts that hold something, not only of empty ones."""
        holding = [fund_id for fund_id in self.funds if self.debit_balance(role, fund_id) != 0]
        choices = st.sampled_from(self.funds)
        if holding:
            choices = st.one_of(st.sampled_from(holding), choices)
        return data.draw(choices, label="fund")

    def spend(self, data, *available: int) -> int:
        """An amount to take out of limited accounts: as often within what they hold, as exactly what one
        holds or one more, as anything at all."""
        within = st.integers(min_value=1, max_value=max(min(available), 1))
        edges = st.sampled_from(sorted({max(a, 1) for a in available} | {max(a, 0) + 1 for a in available}))
        return data.draw(st.one_of(within, edges, amounts), label="amount")

    # --- operations that are valid unless the books say otherwise ------------------------------------------

    @initialize(gifts=st.lists(amounts, min_size=FUND_COUNT, max_size=FUND_COUNT), day=days)
    def give_every_fund_a_first_gift(self, gifts, day):
        """Money in every fund's bank from the start, so that limits are reached by what is spent rather
        than only by funds that never received anything."""
        for fund_id, amount in zip(self.funds, gifts, strict=True):
            self.post(recipes.offline_donation(self.chart, fund_id, Money(amount, CURRENCY), "bank",
                                               self.particulars(day)))

    @rule(fund=fund_indexes, day=days, amount=amounts, channel=st.sampled_from(["bank", "cash"]))
    def donate_offline(self, fund, day, amount, channel):
        self.post(recipes.offline_donation(self.chart, self.funds[fund], Money(amount, CURRENCY), channel,
                                           self.particulars(day)))

    @rule(fund=fund_indexes, day=days, gross=amounts, data=st.data())
    def donate_online(self, fund, day, gross, data):
        # A fee above the gross would leave processor clearing below zero: the limit must refuse it.
        fee = data.draw(st.integers(min_value=0, max_value=gross + 50), label="fee")
        self.post(recipes.online_donation(self.chart, self.funds[fund], Money(gross, CURRENCY),
                                          Money(fee, CURRENCY), self.particulars(day)))

    @rule(day=days, data=st.data())
    def pay_out(self, day, data):
        fund_id = self.fund_holding(data, Role.PROCESSOR_CLEARING)
        amount = self.spend(data, self.debit_balance(Role.PROCESSOR_CLEARING, fund_id))
        self.post(recipes.payout(self.chart, fund_id, Money(amount, CURRENCY), self.particulars(day)))

    @rule(fund=fund_indexes, day=days, amount=amounts,
          category=st.sampled_from(sorted(recipes.CATEGORY_ROLES)))
    def approve_grant(self, fund, day, amount, category):
        self.post(recipes.grant_approved(self.chart, self.funds[fund], Money(amount, CURRENCY), category,
                                         self.particulars(day)))

    @rule(day=days, data=st.data())
    def pay_grant(self, day, data):
        # Paying more than was approved, or more than the bank holds, must be refused. The amount is drawn
        # around what is still owed; the bank's edge is reached by transfers and refunds.
        fund_id = self.fund_holding(data, Role.GRANTS_PAYABLE)
        amount = self.spend(data, -self.debit_balance(Role.GRANTS_PAYABLE, fund_id))
        self.post(recipes.grant_paid(self.chart, fund_id, Money(amount, CURRENCY), self.particulars(day)))

    @rule(source=fund_indexes, destination=fund_indexes, day=days, data=st.data())
    def transfer(self, source, destination, day, data):
        source_id, destination_id = self.funds[source], self.funds[destination]
        amount = self.spend(data, self.debit_balance(Role.BANK, source_id))
        if source_id == destination_id:
            self.attempt(lambda session: post_entry(session, recipes.transfer_between_funds(
                self.chart, source_id, destination_id, Money(amount, CURRENCY), self.particulars(day))),
                {"invalid_input"})
            return
        self.post(recipes.transfer_between_funds(self.chart, source_id, destination_id, Money(amount, CURRENCY),
                                                 self.particulars(day)))

    @rule(day=days, source=st.sampled_from(["bank", "cash", "processor"]), data=st.data())
    def refund(self, day, source, data):
        role = {"bank": Role.BANK, "cash": Role.CASH, "processor": Role.PROCESSOR_CLEARING}[source]
        fund_id = self.fund_holding(data, role)
        amount = self.spend(data, self.debit_balance(role, fund_id))
        fee_returned = None
        if source == "processor":
            fee_returned = data.draw(st.none() | st.integers(min_value=0, max_value=100), label="fee_returned")
        self.post(recipes.refund(self.chart, fund_id, Money(amount, CURRENCY), source, self.particulars(day),
                                 fee_returned=None if fee_returned is None else Money(fee_returned, CURRENCY)))

    @rule(fund=fund_indexes, day=days, amount=amounts)
    def release_from_restriction(self, fund, day, amount):
        self.post(recipes.release_from_restriction(self.chart, self.funds[fund], Money(amount, CURRENCY),
                                                   self.particulars(day)))

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def reverse(self, data):
        """Reverses any earlier entry, reversals included; the bank's limit may refuse it, and an entry
        already reversed must be refused."""
        original = data.draw(st.sampled_from(self.entries), label="entry")
        reversal_key = key("reversal")
        postings = mirror(original.postings)
        self.aim_at(postings)
        refusals = self.refusals(original.effective_date, postings)
        if original.reversed_by_key is not None:
            refusals.add("entry_already_reversed")

        def work(session: Session) -> PostedEntry:
            return reverse_entry(session, self.organisation_id, original.entry_id,
                                 idempotency_key=reversal_key, recorded_by=RECORDED_BY)

        posted = self.attempt(work, refusals)
        if posted is not None:
            assert posted.reverses_entry_id == original.entry_id
            assert posted.postings == postings
            self.record(posted, work)
            original.reversed_by_key = reversal_key

    # --- retries and reuse of idempotency keys -------------------------------------------------------------

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def replay(self, data):
        """Sends an accepted request again, with its key and content: the ledger answers with the original
        entry and changes nothing, even if the entry's fund or month has closed since (DESIGN.md §4.4)."""
        entry = data.draw(st.sampled_from(self.entries), label="entry")
        self.aim_at(entry.postings)
        posted = self.attempt(entry.replay, set())
        assert posted.id == entry.entry_id
        assert posted.replayed
        assert posted.postings == entry.postings

    @precondition(lambda self: self.entries)
    @rule(fund=fund_indexes, day=days, amount=amounts, data=st.data())
    def reuse_key(self, fund, day, amount, data):
        """Sends other content with an accepted request's key. The key is looked up before anything else
        about the books, so the refusal says that the key was reused even into a closed fund or month."""
        entry = data.draw(st.sampled_from(self.entries), label="entry")
        self.post(recipes.offline_donation(self.chart, self.funds[fund], Money(amount, CURRENCY), "bank",
                                           self.particulars(day, entry.idempotency_key, "other content")),
                  refusals={"idempotency_key_reused"})

    # --- closing funds and periods ---------------------------------------------------------------------------

    @rule(fund=fund_indexes, status=st.sampled_from(["open", "closed"]))
    def open_or_close_fund(self, fund, status):
        self.db.write(lambda session: set_fund_status(session, self.organisation_id, self.funds[fund], status))
        self.fund_status[self.funds[fund]] = status

    @rule(month=st.sampled_from(MONTHS), closed=st.booleans())
    def close_or_reopen_period(self, month, closed):
        change = close_period if closed else reopen_period
        self.db.write(lambda session: change(session, self.organisation_id, *month, changed_by=RECORDED_BY))
        if closed:
            self.closed_months.add(month)
        else:
            self.closed_months.discard(month)

    # --- requests that are always refused ------------------------------------------------------------------
    # Two rules for all of them, so that hypothesis, which picks rules evenly, spends most steps on requests
    # that can succeed.

    @rule(request=st.sampled_from(["donate_into_another_organisations_fund",
                                   "transfer_to_another_organisations_fund"]),
          fund=fund_indexes, day=days, amount=amounts, data=st.data())
    def send_a_request_naming_another_organisations_fund(self, request, fund, day, amount, data):
        getattr(self, request)(self.funds[fund], day, amount, data)

    @rule(request=st.sampled_from(["donate_in_a_currency_the_fund_does_not_keep",
                                   "donate_an_amount_that_is_not_positive_or_too_large", "post_too_many_postings"]),
          fund=fund_indexes, day=days, amount=amounts, data=st.data())
    def send_a_malformed_request(self, request, fund, day, amount, data):
        getattr(self, request)(self.funds[fund], day, amount, data)

    def donate_into_another_organisations_fund(self, _fund_id, day, amount, _data):
        self.post(recipes.offline_donation(self.chart, self.stranger_fund, Money(amount, CURRENCY), "bank",
                                           self.particulars(day)))

    def transfer_to_another_organisations_fund(self, fund_id, day, amount, _data):
        self.post(recipes.transfer_between_funds(self.chart, fund_id, self.stranger_fund, Money(amount, CURRENCY),
                                                 self.particulars(day)))

    def donate_in_a_currency_the_fund_does_not_keep(self, fund_id, day, amount, data):
        currency = data.draw(st.sampled_from(["USD", "JPY", "HKD"]), label="currency")
        self.post(recipes.offline_donation(self.chart, fund_id, Money(amount, currency), "bank",
                                           self.particulars(day)))

    def donate_an_amount_that_is_not_positive_or_too_large(self, fund_id, day, _amount, data):
        amount = data.draw(st.sampled_from([0, -1, -20_000, MAX_AMOUNT_MINOR + 1]), label="amount")
        draft = recipes.offline_donation(self.chart, fund_id, Money(amount, CURRENCY), "bank", self.particulars(day))
        self.attempt(lambda session: post_entry(session, draft), {"amount_invalid"})

    def post_too_many_postings(self, fund_id, day, _amount, _data):
        draft = recipes.offline_donation(self.chart, fund_id, Money(1, CURRENCY), "bank", self.particulars(day))
        draft = replace(draft, postings=draft.postings * (MAX_POSTINGS_PER_ENTRY + 1))
        self.attempt(lambda session: post_entry(session, draft), {"limit_exceeded"})

    # --- the invariants ------------------------------------------------------------------------------------

    @invariant()
    def books_agree_with_the_model(self):
        with self.db.read() as session:
            self.check_every_fund_balances(session)
            assert verify_totals(session, self.organisation_id) == []
            assert verify_months(session, self.organisation_id) == []
            # Each step reads through balance() what the last request aimed at, and compares the whole
            # balances table with the model in check_nothing_else_was_written; teardown reads every account.
            self.check_balances_match_the_model(session, self.last_aimed_at)
            self.check_nothing_else_was_written(session)

    def check_every_fund_balances(self, session: Session) -> None:
        for fund_id in self.funds:
            trial = trial_balance(session, self.organisation_id, fund_id=fund_id)
            assert trial.is_balanced(), trial
            for debit_balances, credit_balances in trial.totals().values():
                assert debit_balances == credit_balances

    def check_balances_match_the_model(self, session: Session, keys) -> None:
        for account, fund_id in keys:
            totals = balance(session, account, fund_id, CURRENCY)
            expected = self.totals.get((account, fund_id), (0, 0))
            assert (totals.debits_minor, totals.credits_minor) == expected, (account, fund_id)

    def teardown(self):
        """At the end of a run, every role's account in every fund, ours and the stranger's."""
        with self.db.read() as session:
            self.check_balances_match_the_model(session, [
                (self.account(role), fund_id) for role in Role for fund_id in (*self.funds, self.stranger_fund)])

    def check_nothing_else_was_written(self, session: Session) -> None:
        stored = {(row.account_id, row.fund_id): (row.debits_minor, row.credits_minor)
                  for row in session.execute(select(Balance).where(Balance.organisation_id == self.organisation_id))
                  .scalars()}
        assert stored == {k: v for k, v in self.totals.items() if v != (0, 0)}
        assert count(session, Entry.id, Entry.organisation_id == self.organisation_id) == len(self.entries)
        assert count(session, Posting.id, Posting.organisation_id == self.organisation_id) == sum(
            len(entry.postings) for entry in self.entries)
        assert count(session, Balance.account_id, Balance.fund_id == self.stranger_fund) == 0


def test_the_ledger_agrees_with_its_model_through_random_operations(db):
    run_state_machine_as_test(lambda: LedgerMachine(db), settings=MACHINE_SETTINGS)

