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
from ledger.core.chart import Side
from ledger.core.drafts import PostedEntry
from ledger.core.errors import InvalidInput, InvalidState
from ledger.core.money import Money
from ledger.core.recipes import JournalLine, Particulars, journal_entry, release_from_restriction
from ledger.core.values import one_of, required_text
from ledger.db.listing import get_owned_with_chart
from ledger.db.models import Fund

MAX_LINES = 100  # a hand-written entry with more lines than this is an import, which has its own path


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
    _, chart_version = get_owned_with_chart(session, Fund, organisation_id, entry.lines[0].fund_id, "fund")
    lines = [JournalLine(line.account_id, line.fund_id, one_of(line.side, Side, f"lines[{index}].side"),
                         Money.positive(line.amount_minor, line.currency, f"lines[{index}].amount_minor"))
             for index, line in enumerate(entry.lines)]
    particulars = Particulars(entry.effective_date, idempotency_key, recorded_by,
                              required_text(entry.description, "description", 500))
    return post_entry(session, journal_entry(load_chart(session, organisation_id, chart_version), lines, particulars))


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
