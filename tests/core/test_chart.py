"""A role held by several accounts: the recipes take the role's default, or the account their caller names once
it is known to hold the role."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.core.chart import CHINA_NONPROFIT, ROLE_SHAPES, AccountType, Chart, Role, Side
from ledger.core.drafts import PostingDraft
from ledger.core.errors import InvalidInput, NotFound
from ledger.core.money import Money
from ledger.core.recipes import (
    Particulars,
    grant_paid,
    offline_donation,
    online_donation,
    payout,
    refund,
    transfer_between_funds,
)

BANK, SECOND_BANK, CASH, REVENUE = 11, 12, 13, 14
STRIPE, WECHAT, FEES, PAYABLE, OUT, IN = 21, 22, 23, 24, 25, 26
CHART = Chart(organisation_id=1, version=3, by_role={
    Role.BANK: (BANK, SECOND_BANK), Role.CASH: (CASH,), Role.DONATION_REVENUE: (REVENUE,),
    Role.PROCESSOR_CLEARING: (STRIPE, WECHAT), Role.PROCESSING_FEES: (FEES,), Role.GRANTS_PAYABLE: (PAYABLE,),
    Role.TRANSFERS_OUT: (OUT,), Role.TRANSFERS_IN: (IN,),
}, by_code={})
FUND, OTHER_FUND = 5, 6
PARTICULARS = Particulars(dt.date(2026, 11, 2), "key", "manager@example.org")


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def test_a_role_gives_its_default_account_unless_another_of_its_accounts_is_named():
    assert CHART.account(Role.BANK) == BANK
    assert CHART.account(Role.BANK, SECOND_BANK) == SECOND_BANK
    assert CHART.account(Role.BANK, BANK) == BANK


def test_an_account_that_does_not_hold_the_role_is_refused_naming_the_callers_field():
    with pytest.raises(InvalidInput) as refused:
        CHART.account(Role.BANK, CASH, field="bank_account_id")

    assert refused.value.field == "bank_account_id"
    assert "not one of the chart's bank accounts" in refused.value.message


def test_a_role_without_accounts_is_the_charts_gap():
    with pytest.raises(NotFound) as refused:
        CHART.account(Role.INVENTORY, 99, field="account_id")

    assert refused.value.field == "account"


def test_a_gift_goes_into_the_bank_account_named():
    draft = offline_donation(CHART, FUND, cny(500), "bank", PARTICULARS, account_id=SECOND_BANK)

    assert draft.postings == (PostingDraft(FUND, SECOND_BANK, REVENUE, 500, "CNY"),)


def test_a_gift_by_cash_cannot_go_into_a_bank_account():
    with pytest.raises(InvalidInput) as refused:
        offline_donation(CHART, FUND, cny(500), "cash", PARTICULARS, account_id=SECOND_BANK)

    assert refused.value.field == "account_id"


def test_an_online_gift_waits_in_its_channels_clearing_account_with_its_fee():
    draft = online_donation(CHART, FUND, cny(1_000), cny(30), PARTICULARS, clearing_account_id=WECHAT)

    assert draft.postings == (PostingDraft(FUND, WECHAT, REVENUE, 1_000, "CNY"),
                              PostingDraft(FUND, FEES, WECHAT, 30, "CNY"))


def test_a_payout_moves_one_channels_clearing_to_one_bank():
    draft = payout(CHART, FUND, cny(970), PARTICULARS, clearing_account_id=WECHAT, bank_account_id=SECOND_BANK)

    assert draft.postings == (PostingDraft(FUND, SECOND_BANK, WECHAT, 970, "CNY"),)


def test_a_refund_leaves_the_account_the_gift_went_into_and_a_returned_fee_goes_back_to_its_clearing():
    from_bank = refund(CHART, FUND, cny(200), "bank", PARTICULARS, account_id=SECOND_BANK)
    from_channel = refund(CHART, FUND, cny(200), "processor", PARTICULARS, fee_returned=cny(6), account_id=WECHAT)

    assert from_bank.postings == (PostingDraft(FUND, REVENUE, SECOND_BANK, 200, "CNY"),)
    assert from_channel.postings == (PostingDraft(FUND, REVENUE, WECHAT, 200, "CNY"),
                                     PostingDraft(FUND, WECHAT, FEES, 6, "CNY"))


def test_a_grant_is_paid_from_the_bank_account_named():
    draft = grant_paid(CHART, FUND, cny(700), PARTICULARS, bank_account_id=SECOND_BANK)

    assert draft.postings == (PostingDraft(FUND, PAYABLE, SECOND_BANK, 700, "CNY"),)


def test_a_transfer_leaves_one_bank_account_and_reaches_another():
    draft = transfer_between_funds(CHART, FUND, OTHER_FUND, cny(300), PARTICULARS, from_account_id=SECOND_BANK,
                                   to_account_id=BANK)

    assert draft.postings == (PostingDraft(FUND, OUT, SECOND_BANK, 300, "CNY"),
                              PostingDraft(OTHER_FUND, BANK, IN, 300, "CNY"))


def test_each_role_has_the_shape_of_its_account_in_the_standards_chart():
    assert ROLE_SHAPES[Role.BANK] == (AccountType.ASSET, Side.DEBIT)
    assert ROLE_SHAPES[Role.GRANTS_PAYABLE] == (AccountType.LIABILITY, Side.CREDIT)
    assert set(ROLE_SHAPES) == {line.role for line in CHINA_NONPROFIT if line.role}


@pytest.mark.parametrize(("build", "field"), [
    (lambda: payout(CHART, FUND, cny(1), PARTICULARS, bank_account_id=STRIPE), "bank_account_id"),
    (lambda: payout(CHART, FUND, cny(1), PARTICULARS, clearing_account_id=BANK), "clearing_account_id"),
    (lambda: online_donation(CHART, FUND, cny(1), cny(0), PARTICULARS, clearing_account_id=BANK),
     "clearing_account_id"),
    (lambda: grant_paid(CHART, FUND, cny(1), PARTICULARS, bank_account_id=CASH), "bank_account_id"),
    (lambda: transfer_between_funds(CHART, FUND, OTHER_FUND, cny(1), PARTICULARS, from_account_id=CASH),
     "from_account_id"),
    (lambda: transfer_between_funds(CHART, FUND, OTHER_FUND, cny(1), PARTICULARS, to_account_id=CASH),
     "to_account_id"),
    (lambda: refund(CHART, FUND, cny(1), "bank", PARTICULARS, account_id=CASH), "account_id"),
])
def test_an_account_named_for_a_role_it_does_not_hold_is_refused_naming_the_field_it_came_in(build, field):
    with pytest.raises(InvalidInput) as refused:
        build()

    assert refused.value.field == field
