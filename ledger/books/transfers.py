"""Transfers: money moved between two funds of one organisation, each fund staying balanced on its own."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry
from ledger.books.organisations import get_fund
from ledger.core.drafts import PostedEntry
from ledger.core.money import Money
from ledger.core.recipes import Particulars, transfer_between_funds
from ledger.db.listing import get_owned_with_chart
from ledger.db.models import Fund


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as a fund manager writes it down. ``from_account_id`` / ``to_account_id``: the bank accounts it
    leaves and reaches, when not the bank role's default."""

    from_fund_id: int
    to_fund_id: int
    amount_minor: int
    currency: str
    effective_date: dt.date
    description: str = ""
    from_account_id: int | None = None
    to_account_id: int | None = None


def transfer(session: Session, organisation_id: int, order: Transfer, *, idempotency_key: str,
             recorded_by: str) -> PostedEntry:
    """Posts the transfer's entry: out of one fund's bank, into the other's."""
    source, chart_version = get_owned_with_chart(session, Fund, organisation_id, order.from_fund_id, "fund")
    get_fund(session, organisation_id, order.to_fund_id)
    draft = transfer_between_funds(
        load_chart(session, organisation_id, chart_version), order.from_fund_id, order.to_fund_id,
        Money.positive(order.amount_minor, order.currency),
        Particulars(order.effective_date, idempotency_key, recorded_by,
                    order.description or f"transfer from {source.code}"),
        order.from_account_id, order.to_account_id)
    return post_entry(session, draft)
