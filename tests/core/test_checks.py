"""The checks of a batch against what the ledger holds, and the account limits, judged without a database on a
``Lookup`` built by hand (the store fills the same one from the database)."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.core.chart import BalanceLimit
from ledger.core.checks import (
    BEFORE_THE_BOOKS,
    check_drafts,
    check_not_after,
    check_references,
    field_prefix,
    find_replays,
    refuse_repeated_keys,
)
from ledger.core.drafts import MAX_ENTRIES_PER_CALL, EntryDraft, PostedEntry, PostingDraft
from ledger.core.errors import (
    AccountLimitExceeded,
    CurrencyMismatch,
    FundClosed,
    IdempotencyKeyReused,
    InvalidInput,
    LedgerError,
    NotFound,
    OrganisationMismatch,
    PeriodClosed,
    TooMany,
)
from ledger.core.facts import (
    AccountFacts,
    BalanceKey,
    ClosedPeriod,
    Cumulative,
    DateRange,
    DayTotals,
    EntryKey,
    FundFacts,
    KeptEntry,
    Lookup,
    LookupRequest,
)
from ledger.core.limits import breaks, check_every_day, check_limits, days_after, shortfall
from ledger.core.money import Money
from ledger.core.recipes import Particulars, reversal
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import FundStatus

ORG, OTHER_ORG = 1, 2
BANK, REVENUE, PAYABLE, EXPENSE, STRANGER = 10, 11, 12, 13, 19
FUND, CLOSED_FUND, USD_FUND, STRANGE_FUND = 20, 21, 22, 29
DAY = dt.date(2026, 11, 2)


def lookup(**changes) -> Lookup:
    """What a small ledger holds: a bank that may not go below zero, a payable that may not be overpaid."""
    facts = Lookup(
        accounts={BANK: AccountFacts(ORG, "1002", BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS),
                  REVENUE: AccountFacts(ORG, "4101", BalanceLimit.NONE),
                  PAYABLE: AccountFacts(ORG, "2209.01", BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS),
                  EXPENSE: AccountFacts(ORG, "5101", BalanceLimit.NONE),
                  STRANGER: AccountFacts(OTHER_ORG, "1002", BalanceLimit.NONE)},
        funds={FUND: FundFacts(ORG, "C1", FundStatus.OPEN, "CNY"),
               CLOSED_FUND: FundFacts(ORG, "C2", FundStatus.CLOSED, "CNY"),
               USD_FUND: FundFacts(ORG, "US", FundStatus.OPEN, "USD"),
               STRANGE_FUND: FundFacts(OTHER_ORG, "X", FundStatus.OPEN, "CNY")},
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def draft(*postings: PostingDraft, key: str = "k1", day: dt.date = DAY) -> EntryDraft:
    return EntryDraft(ORG, "donation", day, "gift", key, "manager@example.org",
                      postings or (PostingDraft(FUND, BANK, REVENUE, 100, "CNY"),))


def refusal(error_type: type[LedgerError], call) -> LedgerError:
    with pytest.raises(error_type) as caught:
        call()
    return caught.value


# --- references ------------------------------------------------------------------------------------------------


def test_a_draft_whose_references_hold_passes():
    check_references(draft(), lookup(), "")


@pytest.mark.parametrize(("posting", "error", "field"), [
    (PostingDraft(99, BANK, REVENUE, 1, "CNY"), NotFound, "postings[0].fund_id"),
    (PostingDraft(STRANGE_FUND, BANK, REVENUE, 1, "CNY"), OrganisationMismatch, "postings[0].fund_id"),
    (PostingDraft(CLOSED_FUND, BANK, REVENUE, 1, "CNY"), FundClosed, "postings[0].fund_id"),
    (PostingDraft(USD_FUND, BANK, REVENUE, 1, "CNY"), CurrencyMismatch, "postings[0].currency"),
    (PostingDraft(FUND, 99, REVENUE, 1, "CNY"), NotFound, "postings[0].debit_account_id"),
    (PostingDraft(FUND, BANK, 99, 1, "CNY"), NotFound, "postings[0].credit_account_id"),
    (PostingDraft(FUND, STRANGER, REVENUE, 1, "CNY"), OrganisationMismatch, "postings[0].debit_account_id"),
    (PostingDraft(FUND, BANK, STRANGER, 1, "CNY"), OrganisationMismatch, "postings[0].credit_account_id"),
])
def test_a_posting_that_points_where_it_may_not_is_refused_naming_its_field(posting, error, field):
    refused = refusal(error, lambda: check_references(draft(posting), lookup(), ""))

    assert (refused.field, type(refused)) == (field, error)


def test_the_second_postings_problem_is_named_as_the_second():
    entry = draft(PostingDraft(FUND, BANK, REVENUE, 1, "CNY"), PostingDraft(FUND, 99, REVENUE, 1, "CNY"))

    assert refusal(NotFound, lambda: check_references(entry, lookup(), "entries[4].")).field == \
        "entries[4].postings[1].debit_account_id"


@pytest.mark.parametrize(("day", "closed"), [
    (dt.date(2026, 10, 1), True), (dt.date(2026, 10, 31), True), (dt.date(2026, 9, 30), False),
    (dt.date(2026, 11, 1), False),
])
def test_an_entry_dated_in_a_closed_month_is_refused_on_its_first_and_last_day(day, closed):
    october = lookup(closed_periods={ORG: [ClosedPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))],
                                     OTHER_ORG: [ClosedPeriod(dt.date(2026, 9, 1), dt.date(2026, 11, 30))]})

    if not closed:
        check_references(draft(day=day), october, "")
        return
    refused = refusal(PeriodClosed, lambda: check_references(draft(day=day), october, ""))
    assert refused.field == "effective_date"
    assert refused.details == {"period_start": "2026-10-01", "period_end": "2026-10-31"}


# --- keys and replays --------------------------------------------------------------------------------------------


def test_a_key_used_before_for_the_same_content_is_a_replay_of_that_entry():
    drafts = [draft(key="new"), draft(key="old")]
    digests = [entry.digest() for entry in drafts]
    held = lookup(existing={EntryKey(ORG, "old"): KeptEntry(77, digests[1])})

    assert find_replays(drafts, digests, held, field_prefix(2)) == {1: 77}


def test_a_key_used_before_for_other_content_is_refused_naming_the_entry_it_holds():
    drafts = [draft(key="old")]
    held = lookup(existing={EntryKey(ORG, "old"): KeptEntry(77, "another digest")})

    refused = refusal(IdempotencyKeyReused, lambda: find_replays(drafts, [drafts[0].digest()], held, field_prefix(1)))

    assert (refused.field, refused.details) == ("idempotency_key", {"entry_id": 77})


def test_a_key_of_another_organisation_is_not_a_replay():
    drafts = [draft(key="shared")]
    held = lookup(existing={EntryKey(OTHER_ORG, "shared"): KeptEntry(5, "x")})

    assert find_replays(drafts, [drafts[0].digest()], held, field_prefix(1)) == {}


def test_a_key_twice_in_one_batch_is_refused_at_its_second_use():
    drafts = [draft(key="a"), draft(key="b"), draft(key="a")]

    assert refusal(IdempotencyKeyReused, lambda: refuse_repeated_keys(drafts, field_prefix(3))).field == \
        "entries[2].idempotency_key"


def test_a_batch_names_its_entries_and_a_lone_entry_does_not():
    assert (field_prefix(1)(0), field_prefix(2)(1)) == ("", "entries[1].")


def test_a_batch_larger_than_the_limit_is_refused_before_any_draft_is_read():
    assert refusal(TooMany, lambda: check_drafts([draft()] * (MAX_ENTRIES_PER_CALL + 1), field_prefix(2))).field == \
        "entries"
    check_drafts([draft(key=str(n)) for n in range(3)], field_prefix(3))


# --- limits ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "debits", "credits", "broken"), [
    (BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, 5, 5, False),
    (BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, 5, 6, True),
    (BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 5, 5, False),
    (BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 6, 5, True),
    (BalanceLimit.NONE, 0, 9, False),
])
def test_a_limit_is_broken_only_past_zero(limit, debits, credits, broken):
    assert breaks(limit, debits, credits) is broken


def test_spending_what_the_fund_holds_passes_and_a_fen_more_is_refused_with_the_shortfall():
    held = lookup(balances={BalanceKey(BANK, FUND, "CNY"): Cumulative(1_000, 400)})
    spend = [draft(PostingDraft(FUND, EXPENSE, BANK, 600, "CNY"))]
    overspend = [draft(PostingDraft(FUND, EXPENSE, BANK, 601, "CNY"))]

    check_limits(spend, {}, held, field_prefix(1))
    refused = refusal(AccountLimitExceeded, lambda: check_limits(overspend, {}, held, field_prefix(1)))

    assert refused.field == "postings"
    assert refused.details == {"account_id": BANK, "fund_id": FUND, "shortfall_minor": 1, "idempotency_key": "k1"}
    assert refused.message == "account 1002 in fund C1 would go below zero by 1 minor units of CNY"


def test_a_payable_paid_beyond_what_is_owed_is_refused():
    held = lookup(balances={BalanceKey(PAYABLE, FUND, "CNY"): Cumulative(0, 300),
                            BalanceKey(BANK, FUND, "CNY"): Cumulative(5_000, 0)})

    refused = refusal(AccountLimitExceeded, lambda: check_limits(
        [draft(PostingDraft(FUND, PAYABLE, BANK, 301, "CNY"))], {}, held, field_prefix(1)))

    assert "would be paid beyond what is owed by 1" in refused.message


def test_an_entry_is_judged_whole_so_money_put_back_within_it_counts():
    held = lookup(balances={BalanceKey(BANK, FUND, "CNY"): Cumulative(100, 0)})
    out_and_back = draft(PostingDraft(FUND, EXPENSE, BANK, 150, "CNY"), PostingDraft(FUND, BANK, REVENUE, 60, "CNY"))

    check_limits([out_and_back], {}, held, field_prefix(1))


def test_a_batch_is_played_in_order_and_the_entry_that_overdraws_is_named():
    held = lookup()
    entries = [draft(PostingDraft(FUND, BANK, REVENUE, 100, "CNY"), key="in"),
               draft(PostingDraft(FUND, EXPENSE, BANK, 100, "CNY"), key="out"),
               draft(PostingDraft(FUND, EXPENSE, BANK, 1, "CNY"), key="too much")]

    refused = refusal(AccountLimitExceeded, lambda: check_limits(entries, {}, held, field_prefix(3)))

    assert (refused.field, refused.details["idempotency_key"]) == ("entries[2].postings", "too much")


def test_a_replay_in_a_batch_moves_no_balance_again():
    held = lookup(balances={BalanceKey(BANK, FUND, "CNY"): Cumulative(100, 0)})
    entries = [draft(PostingDraft(FUND, EXPENSE, BANK, 100, "CNY"), key="replayed"),
               draft(PostingDraft(FUND, EXPENSE, BANK, 100, "CNY"), key="new")]

    check_limits(entries, {0: 5}, held, field_prefix(2))


# --- what a batch asks the store for -------------------------------------------------------------------------


def test_a_batch_asks_for_its_accounts_funds_dates_keys_and_balances_once_each_in_order():
    entries = [draft(PostingDraft(FUND, BANK, REVENUE, 1, "CNY"), key="b", day=dt.date(2026, 11, 5)),
               draft(PostingDraft(USD_FUND, BANK, REVENUE, 1, "USD"), PostingDraft(FUND, BANK, REVENUE, 2, "CNY"),
                     key="a", day=dt.date(2026, 10, 3))]

    request = LookupRequest.of(entries)

    assert request.account_ids == [BANK, REVENUE]
    assert request.fund_ids == [FUND, USD_FUND]
    assert request.date_ranges == {ORG: DateRange(dt.date(2026, 10, 3), dt.date(2026, 11, 5))}
    assert request.keys == [EntryKey(ORG, "a"), EntryKey(ORG, "b")]
    assert request.balance_keys == [BalanceKey(BANK, FUND, "CNY"), BalanceKey(BANK, USD_FUND, "USD"),
                                    BalanceKey(REVENUE, FUND, "CNY"), BalanceKey(REVENUE, USD_FUND, "USD")]


# --- entries held, reversals, the plain values -----------------------------------------------------------------


def test_an_entry_held_carries_its_draft_its_id_and_when_it_was_posted():
    entry = draft(PostingDraft(FUND, BANK, REVENUE, 5, "CNY"), PostingDraft(USD_FUND, BANK, REVENUE, 1, "USD"))
    moment = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)

    held = PostedEntry.from_draft(entry, 42, moment)

    assert (held.id, held.posted_at, held.replayed) == (42, moment, False)
    assert (held.organisation_id, held.kind, held.effective_date, held.description, held.idempotency_key,
            held.recorded_by, held.reverses_entry_id, held.postings) == (
        ORG, "donation", DAY, "gift", "k1", "manager@example.org", None, entry.postings)
    assert held.fund_ids() == {FUND, USD_FUND}


def test_a_reversal_undoes_every_posting_of_the_entry_and_names_it():
    held = PostedEntry.from_draft(draft(PostingDraft(FUND, BANK, REVENUE, 5, "CNY"),
                                        PostingDraft(USD_FUND, EXPENSE, BANK, 2, "USD")), 42, dt.datetime.now(dt.UTC))

    undone = reversal(held, Particulars(dt.date(2026, 12, 1), "undo", "auditor@example.org", "mistake"), 42)

    assert undone.postings == (PostingDraft(FUND, REVENUE, BANK, 5, "CNY"),
                               PostingDraft(USD_FUND, BANK, EXPENSE, 2, "USD"))
    assert (undone.organisation_id, undone.kind, undone.reverses_entry_id, undone.effective_date,
            undone.idempotency_key, undone.recorded_by, undone.description) == (
        ORG, "reversal", 42, dt.date(2026, 12, 1), "undo", "auditor@example.org", "mistake")


def test_an_amount_to_move_is_positive_and_names_its_field():
    assert Money.positive(1, "CNY") == Money(1, "CNY")
    assert refusal(LedgerError, lambda: Money.positive(0, "CNY", "gross_minor")).field == "gross_minor"
    assert refusal(LedgerError, lambda: Money.positive(5, "XXX")).code == "currency_unknown"


def test_a_word_of_a_vocabulary_and_a_required_text():
    assert one_of("closed", FundStatus, "status") is FundStatus.CLOSED
    assert refusal(InvalidInput, lambda: one_of("shut", FundStatus, "status")).message == \
        "must be one of open, closed"
    assert required_text("  名称 ", "name", 5) == "名称"
    for bad in ("", "   ", "x" * 6, None):
        assert refusal(InvalidInput, lambda bad=bad: required_text(bad, "name", 5)).field == "name"


def test_an_error_says_its_code_field_and_rule():
    assert str(InvalidInput("must be text", field="name")) == "invalid_input (name): must be text"
    assert str(NotFound("no such fund")) == "not_found: no such fund"


# --- dates and every day's limits -------------------------------------------------------------------------------


def test_an_entry_dated_after_the_latest_date_is_refused_and_one_on_it_passes():
    check_not_after([draft(day=DAY)], DAY, field_prefix(1))
    refused = refusal(InvalidInput, lambda: check_not_after([draft(), draft(key="k2", day=DAY + dt.timedelta(1))],
                                                            DAY, field_prefix(2)))

    assert refused.field == "entries[1].effective_date" and refused.details == {"latest": "2026-11-02"}


def test_an_entry_before_the_books_opened_is_refused_naming_the_opening_day():
    opened = lookup(closed_periods={ORG: [ClosedPeriod(BEFORE_THE_BOOKS, DAY - dt.timedelta(days=1))]})

    check_references(draft(day=DAY), opened, "")
    refused = refusal(InvalidInput, lambda: check_references(draft(day=DAY - dt.timedelta(days=1)), opened, ""))

    assert refused.field == "effective_date" and refused.details == {"books_opened_on": "2026-11-02"}
    assert refused.message == "is before the organisation's books opened, on 2026-11-02"


SEP_30, NOV_5 = dt.date(2026, 9, 30), dt.date(2026, 11, 5)


def test_the_days_after_a_batch_carry_its_changes_through_every_later_day():
    changes = {(BANK, FUND, "CNY"): {SEP_30: [0, 300], NOV_5: [100, 0]}}
    daily = {(BANK, FUND, "CNY"): [DayTotals(dt.date(2026, 9, 1), 1_000, 0), DayTotals(dt.date(2026, 10, 1), 1_500, 0),
                                   DayTotals(NOV_5, 1_500, 200)]}

    after = days_after(changes, daily)

    key = (BANK, FUND, "CNY")
    assert [(day.after, day.before, day.new) for day in after if day.key == key] == [
        (DayTotals(SEP_30, 1_000, 300), DayTotals(SEP_30, 1_000, 0), True),
        (DayTotals(dt.date(2026, 10, 1), 1_500, 300), DayTotals(dt.date(2026, 10, 1), 1_500, 0), False),
        (DayTotals(NOV_5, 1_600, 500), DayTotals(NOV_5, 1_500, 200), False)]


def test_a_backdated_entry_that_empties_a_past_day_is_refused_naming_the_day_and_the_entry():
    held = lookup(balances={BalanceKey(BANK, FUND, "CNY"): Cumulative(1_000, 0)})
    entries = [draft(PostingDraft(FUND, BANK, REVENUE, 50, "CNY"), key="in", day=NOV_5),
               draft(PostingDraft(FUND, EXPENSE, BANK, 500, "CNY"), key="backdated", day=SEP_30)]
    daily = {(BANK, FUND, "CNY"): [DayTotals(dt.date(2026, 10, 1), 1_000, 0)]}
    changes = check_limits(entries, {}, held, field_prefix(2))  # today's total would allow it: 1,000 + 50 − 500

    refused = refusal(AccountLimitExceeded, lambda: check_every_day(entries, changes, daily, held, field_prefix(2)))

    assert changes == {(BANK, FUND, "CNY"): {NOV_5: [50, 0], SEP_30: [0, 500]}}
    assert refused.field == "entries[1].postings" and refused.details["day"] == "2026-09-30"
    assert refused.message == "account 1002 in fund C1 would go below zero on 2026-09-30 by 500 minor units of CNY"
    check_every_day(entries, changes, {(BANK, FUND, "CNY"): [DayTotals(dt.date(2026, 9, 1), 500, 0)]}, held,
                    field_prefix(2))


def test_a_replay_and_an_account_without_a_limit_add_no_day():
    entries = [draft(PostingDraft(FUND, EXPENSE, REVENUE, 70, "CNY"), key="free"),
               draft(PostingDraft(FUND, BANK, REVENUE, 100, "CNY"), key="replayed")]

    assert check_limits(entries, {1: 9}, lookup(), field_prefix(2)) == {}


def test_a_day_already_beyond_its_limit_refuses_only_what_makes_it_worse():
    """Books kept before limits held on every date may hold a day below zero: a late gift that improves it
    passes, a payment that deepens it does not."""
    held = lookup(balances={BalanceKey(BANK, FUND, "CNY"): Cumulative(2_000, 1_000)})
    daily = {(BANK, FUND, "CNY"): [DayTotals(SEP_30, 0, 1_000), DayTotals(NOV_5, 2_000, 1_000)]}
    late_gift = [draft(PostingDraft(FUND, BANK, REVENUE, 100, "CNY"), day=dt.date(2026, 10, 2))]
    late_payment = [draft(PostingDraft(FUND, EXPENSE, BANK, 1, "CNY"), day=dt.date(2026, 10, 2))]

    check_every_day(late_gift, check_limits(late_gift, {}, held, field_prefix(1)), daily, held, field_prefix(1))
    refused = refusal(AccountLimitExceeded, lambda: check_every_day(
        late_payment, check_limits(late_payment, {}, held, field_prefix(1)), daily, held, field_prefix(1)))

    assert refused.details["day"] == "2026-10-02" and refused.details["shortfall_minor"] == 1_001


@pytest.mark.parametrize(("limit", "debits", "credits", "short"), [
    (BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, 100, 130, 30),
    (BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS, 130, 100, 0),
    (BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 130, 100, 30),
    (BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS, 100, 130, 0),
    (BalanceLimit.NONE, 0, 500, 0),
])
def test_how_far_totals_are_beyond_a_limit(limit, debits, credits, short):
    assert shortfall(limit, debits, credits) == short


def test_a_batch_s_changes_by_day_add_up_each_side_from_nothing():
    entries = [draft(PostingDraft(FUND, BANK, REVENUE, 300, "CNY"), key="in"),
               draft(PostingDraft(FUND, BANK, REVENUE, 200, "CNY"), key="in again"),
               draft(PostingDraft(FUND, EXPENSE, BANK, 450, "CNY"), key="out"),
               draft(PostingDraft(FUND, PAYABLE, BANK, 50, "CNY"), key="owed", day=NOV_5)]
    held = lookup(balances={BalanceKey(PAYABLE, FUND, "CNY"): Cumulative(0, 50)})

    changes = check_limits(entries, {}, held, field_prefix(4))
    refused = refusal(AccountLimitExceeded, lambda: check_limits(
        [draft(PostingDraft(FUND, EXPENSE, BANK, 1, "CNY"))], {}, lookup(), field_prefix(1)))

    assert changes == {(BANK, FUND, "CNY"): {DAY: [500, 450], NOV_5: [0, 50]},
                       (PAYABLE, FUND, "CNY"): {NOV_5: [50, 0]}}
    assert refused.details["shortfall_minor"] == 1
