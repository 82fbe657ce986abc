"""Builders that make valid ledger data by default; a test overrides only what it is about."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from ledger.books.charts import load_chart
from ledger.books.organisations import create_fund, create_organisation
from ledger.core.chart import Chart, Role
from ledger.core.recipes import Particulars
from ledger.core.registration import unified_social_credit_code
from ledger.db.engine import Database
from ledger.db.models import Balance, Fund

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_keys = itertools.count(1)


def fresh_uscc() -> str:
    """A valid, unique unified social credit code of a foundation registered with civil affairs (53)."""
    rng = random.Random(uuid.uuid4().int)
    return unified_social_credit_code("53" + "510100" + "".join(rng.choice(USCC_ALPHABET) for _ in range(9)))


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}-{uuid.uuid4().hex[:8]}"


def particulars(day: dt.date = dt.date(2026, 11, 2), idempotency_key: str | None = None,
                description: str = "test entry") -> Particulars:
    return Particulars(day, idempotency_key or key(), "tester@example.org", description)


@dataclass(frozen=True)
class Books:
    """A fresh organisation with its chart, its general fund and three community funds."""

    organisation_id: int
    chart: Chart
    general: int
    open_fund: int
    restricted: int
    other: int

    def account(self, role: Role) -> int:
        return self.chart.account(role)


# Tests date entries in 2026 and run in later years: their organisations' books open long before.
BOOKS_OPENED = dt.date(2000, 1, 1)


def new_books(db: Database, currency: str = "CNY") -> Books:
    def build(session):
        organisation = create_organisation(
            session, name=f"测试基金会 {uuid.uuid4().hex[:6]}", kind="foundation", base_currency=currency,
            jurisdiction="CN", registration_number=fresh_uscc(), books_opened_on=BOOKS_OPENED)
        funds = [create_fund(session, organisation.id, code=code, name=code, kind="community",
                             restricted=restricted)
                 for code, restricted in (("C1", False), ("C2", True), ("C3", False))]
        chart = load_chart(session, organisation.id)
        return Books(organisation.id, chart, chart_general(session, organisation.id),
                     funds[0].id, funds[1].id, funds[2].id)

    return db.write(build)


def chart_general(session, organisation_id: int) -> int:
    return session.scalars(select(Fund.id).where(Fund.organisation_id == organisation_id,
                                                 Fund.code == "GENERAL")).one()


def balances_of(db: Database, organisation_id: int) -> dict[tuple[int, int, str], tuple[int, int]]:
    """Every stored (debits, credits) of the organisation, by (account, fund, currency)."""
    with db.read() as session:
        rows = session.execute(
            select(Balance.account_id, Balance.fund_id, Balance.currency, Balance.debits_minor,
                   Balance.credits_minor).where(Balance.organisation_id == organisation_id))
        return {(r.account_id, r.fund_id, r.currency): (r.debits_minor, r.credits_minor) for r in rows}
