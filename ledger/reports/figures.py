"""An organisation's year as China's disclosure rule reads it, from its books: last year's total income, last
year-end's net assets, and this year's charitable-activity spending, management costs and total spending, in its
base currency (postings in other currencies are not counted).

Revenue and expense accounts are never closed into net assets here, so a year's income or spending is the sum of
its twelve months (``month_totals``, kept with the postings), and net assets at a year-end the sum of every
month through it. Charitable spending is the
chart's charitable-activity cost accounts (5101, role ``program_expense``), management the management accounts
(5201), total spending every expense account. Last year's income is its actual income: the ledger keeps no time
restrictions, so the rule's adjustment for income restricted to later years (art. 10) does not arise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.organisations import get_organisation
from ledger.core.chart import AccountType, Role
from ledger.core.vocabulary import OrganisationKind
from ledger.db.models import Account
from ledger.reports.disclosure import OrganisationForm, Test, YearFigures, yearly_tests
from ledger.reports.public import period_by_account


@dataclass(frozen=True, slots=True)
class Disclosure:
    organisation_id: int
    year: int
    currency: str
    public_fundraising: bool
    form: OrganisationForm
    figures: YearFigures
    tests: tuple[Test, Test]


def disclosure(session: Session, organisation_id: int, year: int) -> Disclosure:
    organisation = get_organisation(session, organisation_id)
    form = OrganisationForm.FOUNDATION if organisation.kind == OrganisationKind.FOUNDATION \
        else OrganisationForm.SOCIAL_ORGANISATION
    figures = year_figures(session, organisation_id, year)
    return Disclosure(organisation_id, year, organisation.base_currency, organisation.public_fundraising, form,
                      figures, yearly_tests(form, organisation.public_fundraising, figures))


def year_figures(session: Session, organisation_id: int, year: int) -> YearFigures:
    organisation = get_organisation(session, organisation_id)
    chart = load_chart(session, organisation_id)
    kinds = {row.id: row.type for row in session.execute(
        select(Account.id, Account.type).where(Account.organisation_id == organisation_id))}

    def months(first: dt.date | None, last: dt.date) -> dict[int, int]:  # debits less credits by account
        return period_by_account(session, organisation_id, organisation.base_currency, first, last)

    last_year, this_year = months(dt.date(year - 1, 1, 1), dt.date(year - 1, 12, 1)), \
        months(dt.date(year, 1, 1), dt.date(year, 12, 1))
    through_last_year = months(None, dt.date(year - 1, 12, 1))

    def of_kind(figures: dict[int, int], *wanted: str) -> int:
        return sum(net for account, net in figures.items() if kinds[account] in wanted)

    def of_role(figures: dict[int, int], role: Role) -> int:
        return sum(figures.get(account, 0) for account in chart.by_role.get(role, ()))

    return YearFigures(
        last_year_income_minor=-of_kind(last_year, AccountType.REVENUE),
        # (assets less liabilities: debits less credits over both, a liability's being below zero)
        last_year_end_net_assets_minor=of_kind(through_last_year, AccountType.ASSET, AccountType.LIABILITY),
        charitable_spending_minor=of_role(this_year, Role.PROGRAM_EXPENSE),
        management_minor=of_role(this_year, Role.MANAGEMENT_EXPENSE),
        total_spending_minor=of_kind(this_year, AccountType.EXPENSE))
