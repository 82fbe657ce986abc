"""China's 2016 rule on charitable spending and management costs, judged on hand-made organisations whose answers
are worked out here, line by line (amounts in yuan, written as fen)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ledger.reports.disclosure import OrganisationForm, YearFigures, tier_of, yearly_tests

FOUNDATION, SOCIAL = OrganisationForm.FOUNDATION, OrganisationForm.SOCIAL_ORGANISATION


def yuan(amount: int) -> int:
    return amount * 100


def figures(income=0, net_assets=0, charitable=0, management=0, total=0) -> YearFigures:
    return YearFigures(yuan(income), yuan(net_assets), yuan(charitable), yuan(management), yuan(total))


def test_a_public_fundraising_foundation_that_spends_enough_but_costs_too_much():
    # Last year's income ¥10,000,000; this year ¥7,500,000 on charity (75 % ≥ 70 %: met); total spending
    # ¥8,000,000 of which management ¥900,000 (11.25 % > 10 %: not met).
    spending, management = yearly_tests(FOUNDATION, True, figures(10_000_000, 0, 7_500_000, 900_000, 8_000_000))

    assert (spending.actual, spending.required, spending.met) == (Fraction(3, 4), Fraction(7, 10), True)
    assert (management.actual, management.required, management.met) == (Fraction(9, 80), Fraction(1, 10), False)


def test_a_public_fundraising_social_organisation_may_spend_13_percent_on_management():
    # Management ¥1,200,000 of ¥10,000,000 spent: 12 % ≤ 13 % (a foundation's 10 % would fail it).
    _, management = yearly_tests(SOCIAL, True, figures(10_000_000, 0, 8_800_000, 1_200_000, 10_000_000))
    _, as_foundation = yearly_tests(FOUNDATION, True, figures(10_000_000, 0, 8_800_000, 1_200_000, 10_000_000))

    assert management.met and not as_foundation.met


def test_a_foundation_without_public_fundraising_is_judged_by_its_net_assets_tier():
    # Net assets ¥50,000,000 (the ¥8M–¥60M tier: 6 %, 13 %): ¥2,900,000 on charity is 5.8 % < 6 % (not met);
    # management ¥420,000 of ¥3,500,000 is 12 % ≤ 13 % (met).
    spending, management = yearly_tests(FOUNDATION, False, figures(0, 50_000_000, 2_900_000, 420_000, 3_500_000))

    assert (spending.actual, spending.met) == (Fraction(29, 500), False)
    assert (management.actual, management.required, management.met) == (Fraction(3, 25), Fraction(13, 100), True)


@pytest.mark.parametrize(("net_assets", "spending", "management"), [
    (60_000_000, 6, 12), (59_999_999, 6, 13), (8_000_000, 6, 13), (7_999_999, 7, 15), (4_000_000, 7, 15),
    (3_999_999, 8, 20), (0, 8, 20),
])
def test_each_tier_starts_at_its_bound_included(net_assets, spending, management):
    tier = tier_of(FOUNDATION, yuan(net_assets))

    assert (tier.spending_share, tier.management_share) == (Fraction(spending, 100), Fraction(management, 100))


def test_management_costs_under_200000_yuan_are_not_held_to_the_ratio():
    # ¥150,000 of ¥500,000 is 30 %, far above 10 %, but under ¥200,000 (art. 11).
    _, small = yearly_tests(FOUNDATION, True, figures(1_000_000, 0, 350_000, 150_000, 500_000))
    _, large = yearly_tests(FOUNDATION, True, figures(1_000_000, 0, 350_000, 200_000, 500_000))

    assert small.met and "art. 11" in small.basis and small.actual == Fraction(3, 10)
    assert not large.met


def test_the_smallest_social_organisation_must_also_spend_half_of_last_years_income():
    # Net assets ¥500,000 (under ¥1,000,000): 8 % of it is ¥40,000, and half of last year's ¥300,000 income is
    # ¥150,000. ¥100,000 meets the first and not the second.
    short, _ = yearly_tests(SOCIAL, False, figures(300_000, 500_000, 100_000, 10_000, 110_000))
    enough, _ = yearly_tests(SOCIAL, False, figures(300_000, 500_000, 150_000, 10_000, 160_000))

    assert not short.met and enough.met and "50" in enough.basis


def test_an_organisation_in_deficit_is_in_the_lowest_tier_and_owes_no_spending_on_it():
    # Net assets of -¥50,000 (liabilities beyond assets): the lowest tier (8 %, 20 %); 8 % of a deficit asks nothing.
    spending, management = yearly_tests(FOUNDATION, False, figures(0, -50_000, 0, 10_000, 10_000))

    assert tier_of(FOUNDATION, yuan(-50_000)).spending_share == Fraction(8, 100)
    assert spending.met and spending.actual is None and management.met


def test_a_year_with_nothing_to_judge_meets_both_tests_without_inventing_a_ratio():
    spending, management = yearly_tests(FOUNDATION, True, figures())

    assert spending.met and management.met and spending.actual is None and management.actual is None
