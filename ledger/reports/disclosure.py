"""China's rule on a charitable organisation's yearly spending and management costs (民政部、财政部、国家税务总局
《关于慈善组织开展慈善活动年度支出和管理费用的规定》, 2016), as two tests an organisation's year meets or not.

- With public-fundraising status (art. 7): charitable-activity spending at least 70 % of last year's total income;
  management costs at most 10 % of this year's total spending for a foundation, 13 % for a social organisation or
  social service institution.
- Without it (art. 8 for foundations, art. 9 for the others): spending at least a share of last year-end's net
  assets and management at most a share of this year's spending, by tiers of those net assets (the lower bound of
  each tier included in it); the smallest social organisations' spending must also reach half of last year's income.
- Art. 10: three-year averages may stand for last year's income and net assets (the caller passes them in).
- Art. 11: management costs under ¥200,000 are not held to the ratio.

Amounts are whole fen; ratios are exact fractions, never floats. What the figures are (which accounts make
charitable spending, income, net assets) is the caller's: this module only judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

YUAN = 100  # fen
MANAGEMENT_FLOOR_MINOR = 200_000 * YUAN  # art. 11: below this, management costs are not held to the ratio


class OrganisationForm(StrEnum):
    FOUNDATION = "foundation"  # 基金会
    SOCIAL_ORGANISATION = "social_organisation"  # 社会团体、社会服务机构


@dataclass(frozen=True, slots=True)
class YearFigures:
    """One year of an organisation, in fen: last year's total income and last year-end's net assets (or their
    three-year averages, art. 10), and this year's charitable-activity spending, management costs and total
    spending."""

    last_year_income_minor: int
    last_year_end_net_assets_minor: int
    charitable_spending_minor: int
    management_minor: int
    total_spending_minor: int


@dataclass(frozen=True, slots=True)
class Test:
    """One test of the rule: the share required, the share reached (None when its base is zero), whether it is
    met, and why (the article and the base)."""

    name: str  # "charitable_spending" or "management_costs"
    required: Fraction
    actual: Fraction | None
    met: bool
    basis: str


@dataclass(frozen=True, slots=True)
class Tier:
    net_assets_from_minor: int  # the tier starts here (included)
    spending_share: Fraction  # of last year-end's net assets, at least
    management_share: Fraction  # of this year's total spending, at most
    income_share: Fraction = Fraction(0)  # of last year's income, at least (the smallest social organisations)


def _pct(value: int) -> Fraction:
    return Fraction(value, 100)


# Art. 8 (foundations without public-fundraising status) and art. 9 (the others), richest tier first.
TIERS = {
    OrganisationForm.FOUNDATION: (
        Tier(60_000_000 * YUAN, _pct(6), _pct(12)), Tier(8_000_000 * YUAN, _pct(6), _pct(13)),
        Tier(4_000_000 * YUAN, _pct(7), _pct(15)), Tier(0, _pct(8), _pct(20))),
    OrganisationForm.SOCIAL_ORGANISATION: (
        Tier(10_000_000 * YUAN, _pct(6), _pct(13)), Tier(5_000_000 * YUAN, _pct(7), _pct(14)),
        Tier(1_000_000 * YUAN, _pct(8), _pct(15)), Tier(0, _pct(8), _pct(20), income_share=_pct(50))),
}
PUBLIC_SPENDING_SHARE = _pct(70)  # art. 7, of last year's total income
PUBLIC_MANAGEMENT_SHARE = {OrganisationForm.FOUNDATION: _pct(10), OrganisationForm.SOCIAL_ORGANISATION: _pct(13)}


def tier_of(form: OrganisationForm, net_assets_minor: int) -> Tier:
    """The tier of last year-end's net assets; below zero (a deficit), the lowest."""
    tiers = TIERS[form]
    return next((tier for tier in tiers if net_assets_minor >= tier.net_assets_from_minor), tiers[-1])


def yearly_tests(form: OrganisationForm, public_fundraising: bool, figures: YearFigures) -> tuple[Test, Test]:
    """The year's two tests: charitable spending, then management costs."""
    if public_fundraising:
        spending = _at_least("charitable_spending", figures.charitable_spending_minor, figures.last_year_income_minor,
                             PUBLIC_SPENDING_SHARE, "art. 7: of last year's total income")
        return spending, _management(figures, PUBLIC_MANAGEMENT_SHARE[form], "art. 7")
    tier = tier_of(form, figures.last_year_end_net_assets_minor)
    article = "art. 8" if form == OrganisationForm.FOUNDATION else "art. 9"
    spending = _at_least("charitable_spending", figures.charitable_spending_minor,
                         figures.last_year_end_net_assets_minor, tier.spending_share,
                         f"{article}: of last year-end's net assets")
    if tier.income_share:
        by_income = _at_least("charitable_spending", figures.charitable_spending_minor,
                              figures.last_year_income_minor, tier.income_share, f"{article}: of last year's income")
        spending = Test(spending.name, spending.required, spending.actual, spending.met and by_income.met,
                        f"{spending.basis}, and {tier.income_share * 100}% {by_income.basis.split(': ', 1)[1]}")
    return spending, _management(figures, tier.management_share, article)


def _at_least(name: str, amount: int, base: int, share: Fraction, basis: str) -> Test:
    actual = Fraction(amount, base) if base > 0 else None
    met = amount >= share * base if base > 0 else True  # (nothing to spend from: nothing is required)
    return Test(name, share, actual, met, basis)


def _management(figures: YearFigures, share: Fraction, article: str) -> Test:
    actual = Fraction(figures.management_minor, figures.total_spending_minor) \
        if figures.total_spending_minor > 0 else None
    if figures.management_minor < MANAGEMENT_FLOOR_MINOR:
        return Test("management_costs", share, actual, True,
                    f"{article}: of this year's total spending; under ¥200,000 it is not held to it (art. 11)")
    met = actual is not None and actual <= share
    return Test("management_costs", share, actual, met, f"{article}: of this year's total spending")
