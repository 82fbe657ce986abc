"""The transparency pages of the demo in Chromium: reached from the home page by their links, rendered without
JavaScript on a phone, every figure shown equal to the open data's (the API's numbers, read from the same
aggregates), the chart drawn, the language switch working, and nothing wrong on the console. Screenshots of the
organisation's and a fund's page, in both languages, go to test-output/."""

from __future__ import annotations

import json
import re
import urllib.request
from decimal import Decimal

from tests.pages.browser import PHONE, Console, screenshot


def open_data(site: str, path: str) -> dict:
    with urllib.request.urlopen(site + path) as answer:
        return json.load(answer)


def minor_units(shown: str) -> int:
    """An amount as the page writes it (¥1,234.50 or CN¥1,234.50) in fen."""
    return int(Decimal(re.sub(r"[^\d.\-]", "", shown)) * 100)


def shown_figures(page) -> dict[str, str]:
    return {element.get_attribute("data-figure"): element.inner_text()
            for element in page.locator("[data-figure]").all()}


def test_the_organisation_page_shows_the_open_datas_figures_in_both_languages(chromium, demo_site):
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)
    page.goto(demo_site + "/")

    page.locator("section.organisation h2 a").first.click()
    year = int(re.search(r"(\d{4})", page.locator("section#year h2").inner_text()).group(1))
    organisation_id = int(re.search(r"/o/(\d+)", page.url).group(1))
    data = open_data(demo_site, f"/data/o/{organisation_id}/{year}.json")
    figures = shown_figures(page)
    screenshot(page, "organisation-zh-CN-phone")

    assert {name: minor_units(value) for name, value in figures.items()} == {
        "income": data["income_minor"], "spending": data["spending_minor"]}
    assert data["income_minor"] > 0 and page.locator("ul.tests li").count() == 2
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0  # nothing wider than a phone
    for fund in data["funds"]:
        row = page.locator(f'tr[data-fund="{fund["fund_id"]}"] td.amount')
        assert [minor_units(cell) for cell in row.all_inner_texts()] == [fund["raised_minor"], fund["balance_minor"]]
    assert page.locator("section#grants tbody tr").count() >= 1

    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en" and "Income by source" in page.content()
    assert {name: minor_units(value) for name, value in shown_figures(page).items()} == {
        "income": data["income_minor"], "spending": data["spending_minor"]}
    screenshot(page, "organisation-en-phone")
    assert console.problems == []
    context.close()


def test_a_funds_page_shows_its_figures_chart_and_gifts_like_the_open_data(chromium, demo_site):
    context = chromium.new_context(locale="en")
    page = context.new_page()
    console = Console(page)
    page.goto(demo_site + "/?lang=en")

    page.locator("ul.funds li h3 a").nth(1).click()
    match = re.search(r"/o/(\d+)/f/(\d+)", page.url)
    data = open_data(demo_site, f"/data/o/{match.group(1)}/f/{match.group(2)}.json")
    shown = shown_figures(page)
    screenshot(page, "fund-en-desktop")

    assert {name: minor_units(shown[name]) for name in ("raised", "granted", "balance")} == {
        "raised": data["fund"]["raised_minor"], "granted": data["fund"]["granted_minor"],
        "balance": data["fund"]["balance_minor"]}
    assert int(shown["donors"]) == data["donors"] > 0
    assert page.locator("svg.chart rect").count() == 2 * len(data["months"]) and page.locator("svg.chart").is_visible()
    gifts = page.locator("section#gifts tbody tr")
    assert gifts.count() == len(data["recent_gifts"]) > 0
    names = gifts.locator("td:nth-child(2)").all_inner_texts()
    assert names == [gift["donor_name"] or "Anonymous" for gift in data["recent_gifts"]]

    page.get_by_role("link", name="中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-CN" and "最近十二个月" in page.content()
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert minor_units(shown_figures(page)["raised"]) == data["fund"]["raised_minor"]
    screenshot(page, "fund-zh-CN-desktop")
    assert console.problems == []
    context.close()
