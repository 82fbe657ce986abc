"""Recipes: the domain operations, each building one entry (DESIGN.md §3). Nothing else posts.

Every recipe is a pure function from a chart, amounts and the entry's particulars to an ``EntryDraft``;
``ledger.books.entries.post_entry`` then checks and writes it. Keeping them pure lets tests state what each
operation does to the books without a database.

A role may be held by several accounts (two banks, a clearing account per payment channel): a recipe takes the
role's default account unless its caller names another one of the role (``bank_account_id`` and the like).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.core.chart import Chart, Role, Side
from ledger.core.drafts import EntryDraft, PostedEntry, PostingDraft
from ledger.core.errors import EntryUnbalanced, InvalidInput
from ledger.core.money import Money, check_amount_minor
from ledger.core.vocabulary import DonationChannel, EntryKind, GrantCategory

# Where money given by each offline channel is kept, and so where its refund comes from.
CHANNEL_ROLES = {DonationChannel.BANK: Role.BANK, DonationChannel.CHEQUE: Role.BANK,
                 DonationChannel.CASH: Role.CASH}
REFUND_SOURCES = {**CHANNEL_ROLES, "processor": Role.PROCESSOR_CLEARING}
CATEGORY_ROLES = {
    GrantCategory.CHARITABLE_ACTIVITIES: Role.PROGRAM_EXPENSE,
    GrantCategory.MANAGEMENT: Role.MANAGEMENT_EXPENSE,
    GrantCategory.FUNDRAISING: Role.FUNDRAISING_EXPENSE,
}


@dataclass(frozen=True, slots=True)
class Particulars:
    """What every entry carries besides its postings (see ``EntryDraft`` for each field)."""

    effective_date: dt.date
    idempotency_key: str
    recorded_by: str
    description: str = ""


def _entry(chart: Chart, kind: EntryKind, particulars: Particulars, *postings: PostingDraft) -> EntryDraft:
    return EntryDraft(
        organisation_id=chart.organisation_id, kind=kind, effective_date=particulars.effective_date,
        description=particulars.description, idempotency_key=particulars.idempotency_key,
        recorded_by=particulars.recorded_by, postings=tuple(postings),
    )


def _move(fund_id: int, debit_account_id: int, credit_account_id: int, amount: Money) -> PostingDraft:
    return PostingDraft(fund_id, debit_account_id, credit_account_id, amount.amount_minor, amount.currency)


def _choice(value: str, allowed: dict, field: str):
    if value not in allowed:
        raise InvalidInput(f"must be one of {', '.join(allowed)}", field=field)
    return allowed[value]


def offline_donation(chart: Chart, fund_id: int, amount: Money, channel: str, particulars: Particulars,
                     account_id: int | None = None) -> EntryDraft:
    """A gift received by bank transfer, cheque or cash: Dr bank (or cash) / Cr donation revenue."""
    role = _choice(channel, CHANNEL_ROLES, "channel")
    return _entry(chart, EntryKind.DONATION, particulars,
                  _move(fund_id, chart.account(role, account_id), chart.account(Role.DONATION_REVENUE), amount))


def online_donation(chart: Chart, fund_id: int, gross: Money, fee: Money, particulars: Particulars,
                    clearing_account_id: int | None = None) -> EntryDraft:
    """A gift through a payment processor: the gross is revenue, the processor's fee a fundraising cost;
    the net waits in the channel's processor clearing account until the payout."""
    clearing = chart.account(Role.PROCESSOR_CLEARING, clearing_account_id, "clearing_account_id")
    postings = [_move(fund_id, clearing, chart.account(Role.DONATION_REVENUE), gross)]
    if fee.amount_minor:
        postings.append(_move(fund_id, chart.account(Role.PROCESSING_FEES), clearing, fee))
    return _entry(chart, EntryKind.ONLINE_DONATION, particulars, *postings)


def in_kind_donation(chart: Chart, fund_id: int, value: Money, particulars: Particulars,
                     consumed_at_once: bool = False) -> EntryDraft:
    """Goods or services given, at their fair value: Dr inventory (or, when used at once, charitable
    activity costs) / Cr in-kind donation revenue."""
    debit = Role.PROGRAM_EXPENSE if consumed_at_once else Role.INVENTORY
    return _entry(chart, EntryKind.IN_KIND_DONATION, particulars,
                  _move(fund_id, chart.account(debit), chart.account(Role.IN_KIND_REVENUE), value))


def refund(chart: Chart, fund_id: int, amount: Money, source: str, particulars: Particulars,
           fee_returned: Money | None = None, account_id: int | None = None) -> EntryDraft:
    """Gives a gift back: the reverse of the donation's revenue posting, out of the bank, cash or processor
    clearing account the gift went into (``account_id``, else the role's default). A processor that returns its
    fee on refund (``fee_returned``) reduces the fee expense."""
    role = _choice(source, REFUND_SOURCES, "source")
    source_account = chart.account(role, account_id)
    postings = [_move(fund_id, chart.account(Role.DONATION_REVENUE), source_account, amount)]
    if fee_returned is not None and fee_returned.amount_minor:
        clearing = source_account if role is Role.PROCESSOR_CLEARING else chart.account(Role.PROCESSOR_CLEARING)
        postings.append(_move(fund_id, clearing, chart.account(Role.PROCESSING_FEES), fee_returned))
    return _entry(chart, EntryKind.REFUND, particulars, *postings)


def processor_fee(chart: Chart, fund_id: int, fee: Money, particulars: Particulars,
                  clearing_account_id: int | None = None) -> EntryDraft:
    """A fee the processor charges apart from a gift (a dispute fee, say): Dr fees / Cr processor clearing."""
    clearing = chart.account(Role.PROCESSOR_CLEARING, clearing_account_id, "clearing_account_id")
    return _entry(chart, EntryKind.PROCESSOR_FEE, particulars,
                  _move(fund_id, chart.account(Role.PROCESSING_FEES), clearing, fee))


def processor_fee_returned(chart: Chart, fund_id: int, fee: Money, particulars: Particulars,
                           clearing_account_id: int | None = None) -> EntryDraft:
    """A fee the processor gives back (a dispute won, in some countries): Dr processor clearing / Cr fees."""
    clearing = chart.account(Role.PROCESSOR_CLEARING, clearing_account_id, "clearing_account_id")
    return _entry(chart, EntryKind.PROCESSOR_FEE, particulars,
                  _move(fund_id, clearing, chart.account(Role.PROCESSING_FEES), fee))


def payout(chart: Chart, fund_id: int, amount: Money, particulars: Particulars,
           clearing_account_id: int | None = None, bank_account_id: int | None = None) -> EntryDraft:
    """The processor pays its balance out to the bank."""
    return _entry(chart, EntryKind.PAYOUT, particulars, _move(
        fund_id, chart.account(Role.BANK, bank_account_id, "bank_account_id"),
        chart.account(Role.PROCESSOR_CLEARING, clearing_account_id, "clearing_account_id"), amount))


def payout_netted(chart: Chart, fund_id: int, amount: Money, particulars: Particulars,
                  clearing_account_id: int | None = None, bank_account_id: int | None = None) -> EntryDraft:
    """A fund's debt to the processor (a refund or dispute after an earlier payout) netted out of a payout: the
    other funds' shares reached the bank less this, so this fund's bank pays its clearing account back."""
    return _entry(chart, EntryKind.PAYOUT, particulars, _move(
        fund_id, chart.account(Role.PROCESSOR_CLEARING, clearing_account_id, "clearing_account_id"),
        chart.account(Role.BANK, bank_account_id, "bank_account_id"), amount))


def grant_approved(chart: Chart, fund_id: int, amount: Money, category: str,
                   particulars: Particulars) -> EntryDraft:
    """A grant is committed: the cost is recognised and owed to the grantee."""
    cost = _choice(category, CATEGORY_ROLES, "category")
    return _entry(chart, EntryKind.GRANT_APPROVED, particulars,
                  _move(fund_id, chart.account(cost), chart.account(Role.GRANTS_PAYABLE), amount))


def grant_paid(chart: Chart, fund_id: int, amount: Money, particulars: Particulars,
               bank_account_id: int | None = None) -> EntryDraft:
    """The approved grant leaves the bank; grants payable may not go below what was approved."""
    return _entry(chart, EntryKind.GRANT_PAID, particulars, _move(
        fund_id, chart.account(Role.GRANTS_PAYABLE), chart.account(Role.BANK, bank_account_id, "bank_account_id"),
        amount))


def grant_cancelled(chart: Chart, fund_id: int, unpaid: Money, category: str, particulars: Particulars) -> EntryDraft:
    """An approved grant cancelled before it was wholly paid: the unpaid part is no longer owed, and its cost comes
    back to the fund (the mirror of ``grant_approved`` for that part)."""
    cost = _choice(category, CATEGORY_ROLES, "category")
    return _entry(chart, EntryKind.GRANT_CANCELLED, particulars,
                  _move(fund_id, chart.account(Role.GRANTS_PAYABLE), chart.account(cost), unpaid))


def transfer_between_funds(chart: Chart, from_fund_id: int, to_fund_id: int, amount: Money,
                           particulars: Particulars, from_account_id: int | None = None,
                           to_account_id: int | None = None) -> EntryDraft:
    """Cash moves between two funds of one organisation, out of one bank account and into another (or the
    same); each fund stays balanced on its own."""
    if from_fund_id == to_fund_id:
        raise InvalidInput("a transfer needs two different funds", field="to_fund_id")
    return _entry(chart, EntryKind.TRANSFER, particulars,
                  _move(from_fund_id, chart.account(Role.TRANSFERS_OUT),
                        chart.account(Role.BANK, from_account_id, "from_account_id"), amount),
                  _move(to_fund_id, chart.account(Role.BANK, to_account_id, "to_account_id"),
                        chart.account(Role.TRANSFERS_IN), amount))


def release_from_restriction(chart: Chart, fund_id: int, amount: Money, particulars: Particulars) -> EntryDraft:
    """Restricted net assets become unrestricted, when the restriction is met or at period close."""
    return _entry(chart, EntryKind.RELEASE_FROM_RESTRICTION, particulars, _move(
        fund_id, chart.account(Role.RESTRICTED_NET_ASSETS), chart.account(Role.UNRESTRICTED_NET_ASSETS), amount))


def reversal(original: PostedEntry, particulars: Particulars, reverses_entry_id: int) -> EntryDraft:
    """The mirror image of an entry, naming it: every posting undone, in the same funds and amounts."""
    return EntryDraft(
        organisation_id=original.organisation_id, kind=EntryKind.REVERSAL, effective_date=particulars.effective_date,
        description=particulars.description, idempotency_key=particulars.idempotency_key,
        recorded_by=particulars.recorded_by, reverses_entry_id=reverses_entry_id,
        postings=tuple(posting.reversed() for posting in original.postings))


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One side of a manual journal entry, as an accountant writes it."""

    account_id: int
    fund_id: int
    side: Side
    amount: Money


def journal_entry(chart: Chart, lines: Sequence[JournalLine], particulars: Particulars) -> EntryDraft:
    """A manual entry written as debit and credit lines. Per fund and currency the debits must equal the
    credits; the lines are then paired into postings, largest first, which keeps the count small."""
    groups: dict[tuple[int, str], tuple[list[list], list[list]]] = {}
    for index, line in enumerate(lines):
        if line.side not in (Side.DEBIT, Side.CREDIT):
            raise InvalidInput("must be debit or credit", field=f"lines[{index}].side")
        check_amount_minor(line.amount.amount_minor, f"lines[{index}].amount")
        debits, credits = groups.setdefault((line.fund_id, line.amount.currency), ([], []))
        (debits if line.side == Side.DEBIT else credits).append([line.account_id, line.amount.amount_minor])
    postings = []
    for (fund_id, currency), (debits, credits) in sorted(groups.items()):
        difference = sum(amount for _, amount in debits) - sum(amount for _, amount in credits)
        if difference:
            raise EntryUnbalanced(
                f"in fund {fund_id}, {currency} debits and credits differ by {difference} minor units",
                field="lines")
        postings += _pair(fund_id, currency, debits, credits)
    return _entry(chart, EntryKind.JOURNAL, particulars, *postings)


def _pair(fund_id: int, currency: str, debits: list[list], credits: list[list]) -> list[PostingDraft]:
    """Pairs debit lines with credit lines, largest first, into postings of the amounts they share."""
    debits = sorted(debits, key=lambda line: -line[1])
    credits = sorted(credits, key=lambda line: -line[1])
    postings, debit_index, credit_index = [], 0, 0
    while debit_index < len(debits) and credit_index < len(credits):
        debit, credit = debits[debit_index], credits[credit_index]
        amount = min(debit[1], credit[1])
        if amount > 0:
            postings.append(PostingDraft(fund_id, debit[0], credit[0], amount, currency))
        debit[1] -= amount
        credit[1] -= amount
        debit_index += debit[1] == 0
        credit_index += credit[1] == 0
    return postings
