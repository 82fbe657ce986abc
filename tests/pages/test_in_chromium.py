"""The pages in a real browser (Debian's Chromium): they render on a phone without JavaScript, say nothing wrong
on the console (a broken Content Security Policy would), and switch language."""

from __future__ import annotations

from ledger.demo import DEMO_NAME
from tests.pages.browser import PHONE, Console, screenshot


def test_the_home_page_on_a_phone_without_javascript_lists_the_demo_in_chinese(chromium, demo_site):
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)

    page.goto(demo_site + "/")

    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "向基金捐赠"
    assert DEMO_NAME in page.locator("section.organisation h2").first.inner_text()
    assert page.locator("ul.funds li").count() >= 2
    screenshot(page, "home-zh-CN-phone")
    assert console.problems == []
    context.close()


def test_the_switch_turns_the_page_into_english_and_back(chromium, demo_site):
    context = chromium.new_context(locale="zh-CN")
    page = context.new_page()
    console = Console(page)
    page.goto(demo_site + "/")

    page.get_by_role("link", name="English").click()
    english = page.locator("h1").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "home-en-desktop")
    page.get_by_role("link", name="中文").click()

    assert english == "Give to a fund" and width
    assert page.locator("html").get_attribute("lang") == "zh-CN" and page.url.endswith("/?lang=zh-CN")
    assert console.problems == []
    context.close()


def test_nothing_on_a_phone_is_wider_than_the_screen(chromium, demo_site):
    context = chromium.new_context(viewport=PHONE, locale="en")
    page = context.new_page()
    page.goto(demo_site + "/?lang=en")

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    assert overflow <= 0
    context.close()
