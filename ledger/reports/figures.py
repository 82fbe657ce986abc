"""An organisation's year as China's disclosure rule reads it, from its books: last year's total income, last
year-end's net assets, and this year's charitable-activity spending, management costs and total spending, in its
base currency (postings in other currencies are not counted).

Revenue and expense accounts are never closed into net assets here, so a year's income or spending is the change of
their cumulative totals between two year-ends (trial balances as of 31 December). Charitable spending is the
chart's charitable-activity cost accounts (5101, role ``program_expense``), management the management accounts
(5201), total spending every expense account. Last year's income is its actual income: the ledger keeps no time
restrictions, so the rule's adjustment for income restricted to later years (art. 10) does not arise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.books.balances import trial_balance
from ledger.books.charts import load_chart
from ledger.books.organisations import get_organisation
from ledger.core.chart import AccountType, Role
from ledger.core.vocabulary import OrganisationKind
from ledger.reports.disclosure import OrganisationForm, Test, YearFigures, yearly_tests


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
    ends = {end: _net_by_account(session, organisation_id, organisation.base_currency, dt.date(end, 12, 31))
            for end in (year - 2, year - 1, year)}
    kinds = {account: kind for end in ends.values() for account, (kind, _) in end.items()}

    def at(end: int, account: int) -> int:
        return ends[end].get(account, ("", 0))[1]

    def change(first: int, last: int, accounts) -> int:  # debits less credits over the year ending at ``last``
        return sum(at(last, account) - at(first, account) for account in accounts)

    def of_kind(*wanted: str) -> list[int]:
        return [account for account, kind in kinds.items() if kind in wanted]

    return YearFigures(
        last_year_income_minor=-change(year - 2, year - 1, of_kind(AccountType.REVENUE)),
        # (assets less liabilities: debits less credits over both, a liability's being below zero)
        last_year_end_net_assets_minor=sum(at(year - 1, account)
                                           for account in of_kind(AccountType.ASSET, AccountType.LIABILITY)),
        charitable_spending_minor=change(year - 1, year, chart.by_role.get(Role.PROGRAM_EXPENSE, ())),
        management_minor=change(year - 1, year, chart.by_role.get(Role.MANAGEMENT_EXPENSE, ())),
        total_spending_minor=change(year - 1, year, of_kind(AccountType.EXPENSE)))


def _net_by_account(session: Session, organisation_id: int, currency: str,
                    as_of: dt.date) -> dict[int, tuple[str, int]]:
    """Each account's element and its debits less credits as of the end of the day, in the currency."""
    return {line.account_id: (line.type, line.debits_minor - line.credits_minor)
            for line in trial_balance(session, organisation_id, as_of=as_of).lines if line.currency == currency}
