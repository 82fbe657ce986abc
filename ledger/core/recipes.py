"""Recipes: the domain operations, each building one entry (DESIGN.md §3). Nothing else posts.

Every recipe is a pure function from a chart, amounts and the entry's particulars to an ``EntryDraft``;
``post_entry`` then checks and writes it. Keeping them pure lets tests state what each operation does to
the books without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.books.entries import EntryDraft, PostingDraft
from ledger.books.organisations import Chart
from ledger.core.chart import Role
from ledger.core.errors import EntryUnbalanced, InvalidInput
from ledger.core.money import Money, check_amount_minor

OFFLINE_CHANNELS = {"bank": Role.BANK, "cheque": Role.BANK, "cash": Role.CASH}
GRANT_CATEGORIES = {
    "charitable_activities": Role.PROGRAM_EXPENSE,
    "management": Role.MANAGEMENT_EXPENSE,
    "fundraising": Role.FUNDRAISING_EXPENSE,
}


@dataclass(frozen=True, slots=True)
class Particulars:
    """What every entry carries besides its postings."""

    effective_date: dt.date
    idempotency_key: str
    recorded_by: str
    description: str = ""


def _entry(chart: Chart, kind: str, particulars: Particulars, *postings: PostingDraft) -> EntryDraft:
    return EntryDraft(
        organisation_id=chart.organisation_id, kind=kind, effective_date=particulars.effective_date,
        description=particulars.description, idempotency_key=particulars.idempotency_key,
        recorded_by=particulars.recorded_by, postings=tuple(postings),
    )


def _move(chart: Chart, fund_id: int, debit: Role, credit: Role, amount: Money) -> PostingDraft:
    return PostingDraft(fund_id, chart.account(debit), chart.account(credit), amount.amount_minor,
                        amount.currency)


def offline_donation(chart: Chart, fund_id: int, amount: Money, channel: str, p: Particulars) -> EntryDraft:
    """A gift received by bank transfer, cheque or cash: Dr bank (or cash) / Cr donation revenue."""
    if channel not in OFFLINE_CHANNELS:
        raise InvalidInput(f"must be one of {', '.join(OFFLINE_CHANNELS)}", field="channel")
    return _entry(chart, "donation", p, _move(chart, fund_id, OFFLINE_CHANNELS[channel],
                                              Role.DONATION_REVENUE, amount))


def online_donation(chart: Chart, fund_id: int, gross: Money, fee: Money, p: Particulars) -> EntryDraft:
    """A gift through a payment processor: the gross is revenue, the processor's fee a fundraising cost;
    the net waits in processor clearing until the payout."""
    postings = [_move(chart, fund_id, Role.PROCESSOR_CLEARING, Role.DONATION_REVENUE, gross)]
    if fee.amount_minor:
        postings.append(_move(chart, fund_id, Role.PROCESSING_FEES, Role.PROCESSOR_CLEARING, fee))
    return _entry(chart, "online_donation", p, *postings)


def in_kind_donation(chart: Chart, fund_id: int, value: Money, p: Particulars,
                     consumed_at_once: bool = False) -> EntryDraft:
    """Goods or services given, at their fair value: Dr inventory (or, when used at once, charitable
    activity costs) / Cr in-kind donation revenue."""
    debit = Role.PROGRAM_EXPENSE if consumed_at_once else Role.INVENTORY
    return _entry(chart, "in_kind_donation", p, _move(chart, fund_id, debit, Role.IN_KIND_REVENUE, value))


def refund(chart: Chart, fund_id: int, amount: Money, source: str, p: Particulars,
           fee_returned: Money | None = None) -> EntryDraft:
    """Gives a gift back: the reverse of the donation's revenue posting, from the bank, cash or processor
    clearing. A processor that returns its fee on refund (``fee_returned``) reduces the fee expense."""
    roles = {**OFFLINE_CHANNELS, "processor": Role.PROCESSOR_CLEARING}
    if source not in roles:
        raise InvalidInput(f"must be one of {', '.join(roles)}", field="source")
    postings = [_move(chart, fund_id, Role.DONATION_REVENUE, roles[source], amount)]
    if fee_returned is not None and fee_returned.amount_minor:
        postings.append(_move(chart, fund_id, Role.PROCESSOR_CLEARING, Role.PROCESSING_FEES, fee_returned))
    return _entry(chart, "refund", p, *postings)


def processor_fee(chart: Chart, fund_id: int, fee: Money, p: Particulars) -> EntryDraft:
    return _entry(chart, "processor_fee", p, _move(chart, fund_id, Role.PROCESSING_FEES,
                                                   Role.PROCESSOR_CLEARING, fee))


def payout(chart: Chart, fund_id: int, amount: Money, p: Particulars) -> EntryDraft:
    """The processor pays its balance out to the bank."""
    return _entry(chart, "payout", p, _move(chart, fund_id, Role.BANK, Role.PROCESSOR_CLEARING, amount))


def grant_approved(chart: Chart, fund_id: int, amount: Money, category: str, p: Particulars) -> EntryDraft:
    """A grant is committed: the cost is recognised and owed to the grantee."""
    if category not in GRANT_CATEGORIES:
        raise InvalidInput(f"must be one of {', '.join(GRANT_CATEGORIES)}", field="category")
    return _entry(chart, "grant_approved", p, _move(chart, fund_id, GRANT_CATEGORIES[category],
                                                    Role.GRANTS_PAYABLE, amount))


def grant_paid(chart: Chart, fund_id: int, amount: Money, p: Particulars) -> EntryDraft:
    """The approved grant leaves the bank; grants payable may not go below what was approved."""
    return _entry(chart, "grant_paid", p, _move(chart, fund_id, Role.GRANTS_PAYABLE, Role.BANK, amount))


def transfer_between_funds(chart: Chart, from_fund_id: int, to_fund_id: int, amount: Money,
                           p: Particulars) -> EntryDraft:
    """Cash moves between two funds of one organisation; each fund stays balanced on its own."""
    if from_fund_id == to_fund_id:
        raise InvalidInput("a transfer needs two different funds", field="to_fund_id")
    return _entry(chart, "transfer", p,
                  _move(chart, from_fund_id, Role.TRANSFERS_OUT, Role.BANK, amount),
                  _move(chart, to_fund_id, Role.BANK, Role.TRANSFERS_IN, amount))


def release_from_restriction(chart: Chart, fund_id: int, amount: Money, p: Particulars) -> EntryDraft:
    """Restricted net assets become unrestricted, when the restriction is met or at period close."""
    return _entry(chart, "release_from_restriction", p, _move(chart, fund_id, Role.RESTRICTED_NET_ASSETS,
                                                              Role.UNRESTRICTED_NET_ASSETS, amount))


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One side of a manual journal entry, as an accountant writes it."""

    account_id: int
    fund_id: int
    side: str  # "debit" or "credit"
    amount: Money


def journal_entry(chart: Chart, lines: Sequence[JournalLine], p: Particulars) -> EntryDraft:
    """A manual entry written as debit and credit lines. Per fund and currency the debits must equal the
    credits; the lines are then paired into postings, largest first, which keeps the count small."""
    groups: dict[tuple[int, str], tuple[list[list], list[list]]] = {}
    for index, line in enumerate(lines):
        if line.side not in ("debit", "credit"):
            raise InvalidInput("must be debit or credit", field=f"lines[{index}].side")
        check_amount_minor(line.amount.amount_minor, f"lines[{index}].amount")
        debits, credits = groups.setdefault((line.fund_id, line.amount.currency), ([], []))
        (debits if line.side == "debit" else credits).append([line.account_id, line.amount.amount_minor])
    postings = []
    for (fund_id, currency), (debits, credits) in sorted(groups.items()):
        difference = sum(a for _, a in debits) - sum(a for _, a in credits)
        if difference:
            raise EntryUnbalanced(
                f"in fund {fund_id}, {currency} debits and credits differ by {difference} minor units",
                field="lines")
        postings += _pair(fund_id, currency, debits, credits)
    return _entry(chart, "journal", p, *postings)


def _pair(fund_id: int, currency: str, debits: list[list], credits: list[list]) -> list[PostingDraft]:
    debits = sorted(debits, key=lambda line: -line[1])
    credits = sorted(credits, key=lambda line: -line[1])
    postings, d, c = [], 0, 0
    while d < len(debits) and c < len(credits):
        amount = min(debits[d][1], credits[c][1])
        if amount > 0:
            postings.append(PostingDraft(fund_id, debits[d][0], credits[c][0], amount, currency))
        debits[d][1] -= amount
        credits[c][1] -= amount
        d += debits[d][1] == 0
        c += credits[c][1] == 0
    return postings
