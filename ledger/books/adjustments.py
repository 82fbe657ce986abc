"""Entries made by hand: a manual journal entry (an accountant's correction, an opening balance, interest the
bank paid) and a release from restriction. Like every write they go through a recipe and ``post_entry``, so the
same checks, limits and idempotency hold; and, since no record (a gift, a grant) keeps them, they are corrected
by reversing the entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry
from ledger.books.organisations import unknown_funds
from ledger.core.chart import Chart, Role, Side
from ledger.core.drafts import PostedEntry
from ledger.core.errors import InvalidInput, InvalidState, NotFound
from ledger.core.money import Money
from ledger.core.recipes import JournalLine, Particulars, journal_entry, release_from_restriction
from ledger.core.values import one_of, required_text
from ledger.db.listing import get_owned_with_chart
from ledger.db.models import Fund

MAX_LINES = 100  # a hand-written entry with more lines than this is an import, which has its own path
# Accounts whose movements records keep (the gifts and refunds, the grants, the processor's events): a manual line
# on one would move money those records do not know of (pay a grant nobody approved, refund a gift in nobody's
# sight), so it is refused; such money moves through its record.
KEPT_BY_RECORDS = {Role.DONATION_REVENUE: "gifts and refunds", Role.IN_KIND_REVENUE: "gifts in kind",
                   Role.GRANTS_PAYABLE: "grants", Role.PROCESSOR_CLEARING: "the payment processor's events"}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a manual entry as it is written down: ``side`` is debit or credit."""

    account_id: int
    fund_id: int
    side: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class ManualEntry:
    effective_date: dt.date
    description: str
    lines: Sequence[Line]


def post_manual_entry(session: Session, organisation_id: int, entry: ManualEntry, *, idempotency_key: str,
                      recorded_by: str) -> PostedEntry:
    """Posts a manual journal entry: per fund and currency its debits equal its credits; the accounts and funds
    must be the organisation's, the funds open, each account's limit kept."""
    if not 2 <= len(entry.lines) <= MAX_LINES:
        raise InvalidInput(f"a manual entry has 2 to {MAX_LINES} lines", field="lines")
    unknown = unknown_funds(session, organisation_id, [line.fund_id for line in entry.lines])
    if unknown:
        raise NotFound(f"fund {unknown[0]} does not exist", field="fund_id")
    _, chart_version = get_owned_with_chart(session, Fund, organisation_id, entry.lines[0].fund_id, "fund")
    chart = load_chart(session, organisation_id, chart_version)
    _refuse_record_accounts(chart, entry.lines)
    lines = [JournalLine(line.account_id, line.fund_id, one_of(line.side, Side, f"lines[{index}].side"),
                         Money.positive(line.amount_minor, line.currency, f"lines[{index}].amount_minor"))
             for index, line in enumerate(entry.lines)]
    particulars = Particulars(entry.effective_date, idempotency_key, recorded_by,
                              required_text(entry.description, "description", 500))
    return post_entry(session, journal_entry(chart, lines, particulars))


def _refuse_record_accounts(chart: Chart, lines: Sequence[Line]) -> None:
    kept = {account_id: records for role, records in KEPT_BY_RECORDS.items()
            for account_id in chart.by_role.get(role, ())}
    for index, line in enumerate(lines):
        if line.account_id in kept:
            raise InvalidInput(f"account {line.account_id} moves only through {kept[line.account_id]}: record them "
                               "there, not by a manual entry", field=f"lines[{index}].account_id")


def release(session: Session, organisation_id: int, fund_id: int, *, amount_minor: int, currency: str,
            effective_date: dt.date, description: str, idempotency_key: str, recorded_by: str) -> PostedEntry:
    """Releases part of a restricted fund's net assets from restriction (the restriction met: the money spent as
    the donor asked, or the time passed)."""
    fund, chart_version = get_owned_with_chart(session, Fund, organisation_id, fund_id, "fund")
    if not fund.restricted:
        raise InvalidState(f"fund {fund.code} is not restricted: nothing to release", field="fund_id")
    particulars = Particulars(effective_date, idempotency_key, recorded_by,
                              description or f"release from restriction of fund {fund.code}")
    return post_entry(session, release_from_restriction(load_chart(session, organisation_id, chart_version), fund_id,
                                                        Money.positive(amount_minor, currency), particulars))
