"""An organisation's public page: its year judged against China's rule in plain sentences, in Chinese and English,
with the same percentages the public API gives; its funds with what each raised and holds."""

from __future__ import annotations

import uuid

from tests.reports.test_disclosure_figures import YEAR, year_of


def page(world, language: str, year: int = YEAR, org: int | None = None):
    return world.app.test_client().get(f"/o/{org or world.org}?year={year}&lang={language}")


def test_the_page_says_each_test_in_a_sentence_with_the_apis_figures(world):
    year_of(world)
    world.call("org_admin", "PATCH", world.url(""), {"public_fundraising": True}, key=uuid.uuid4().hex)
    api = world.call(None, "GET", world.url(f"/disclosure?year={YEAR}")).json

    english, chinese = page(world, "en"), page(world, "zh-CN")

    text = english.get_data(as_text=True)
    spending, management = api["tests"]
    assert english.status_code == 200 and "Holds public-fundraising status" in text
    assert (f"spent on charitable work {spending['actual_percent']}% of the previous year’s income; the rule asks "
            f"for at least {spending['required_percent']}%: met.") in text
    assert (f"costs were {management['actual_percent']}% of the year’s spending; the rule allows at most "
            f"{management['required_percent']}%: not met.") in text
    zh = chinese.get_data(as_text=True)
    assert "慈善活动支出为上年总收入的75.00%；规定不得低于70.00%：达标。" in zh and "未达标" in zh
    assert "MINE" in text and "Raised" in text and "已筹" in zh
    assert 'data-figure="spending">CN¥8,400,000.00<' in text  # 7,500,000 + 900,000 in the year
    opened = world.app.test_client().get(f"/data/o/{world.org}/{YEAR}.json").json["disclosure"]["tests"]
    assert [(test["actual_percent"], test["required_percent"], test["met"]) for test in opened] == [
        (test["actual_percent"], test["required_percent"], test["met"]) for test in api["tests"]]


def test_without_public_fundraising_the_sentence_speaks_of_net_assets(world):
    year_of(world)

    text = page(world, "en").get_data(as_text=True)

    assert "75.00% of its net assets at the end of the previous year; the rule asks for at least 6.00%: met." in text


def test_an_organisation_or_a_year_that_is_not_there_is_404(world):
    assert page(world, "en", org=999_999).status_code == 404
    assert page(world, "en", year=1900).status_code == 404
