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


def _give(page, demo_site: str, amount: str) -> str:
    """Gives ``amount`` (yuan) to the demo's first community fund, in English, and pays on the test checkout;
    returns what the status page says the fund has received."""
    page.goto(demo_site + "/?lang=en")
    page.locator("a.give").nth(1).click()
    page.get_by_label("Your amount").fill(amount)
    page.get_by_label("Name", exact=True).fill("Li Lei")
    page.get_by_label("Email (for your receipt)").fill("li.lei@example.org")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name=f"Pay CN¥{amount} (test)").click()
    return page.locator("dd.received").inner_text()


def test_a_donor_gives_on_a_phone_without_javascript_and_the_funds_gifts_move_by_the_amount(chromium, demo_site):
    context = chromium.new_context(viewport=PHONE, locale="en", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)

    first = _give(page, demo_site, "50.00")
    screenshot(page, "gift-thanks-en-phone")
    second = _give(page, demo_site, "12.34")

    assert page.locator("h1").inner_text() == "Thank you"
    assert "Your gift of CN¥12.34" in page.locator("p.lead").inner_text()

    def yuan(text: str) -> int:
        return int(text.replace("CN¥", "").replace(",", "").replace(".", ""))

    assert yuan(second) - yuan(first) == 1_234
    assert console.problems == []
    context.close()


def test_the_donation_page_in_chinese_on_a_phone(chromium, demo_site):
    context = chromium.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    console = Console(page)
    page.goto(demo_site + "/")

    page.locator("a.give").first.click()

    assert page.locator("h1").inner_text().startswith("捐赠给")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(page, "give-zh-CN-phone")
    assert console.problems == []
    context.close()


def test_a_gift_paid_at_stripes_checkout_is_recorded_by_its_signed_event(chromium, stripe_site):
    """The whole road with Stripe: the fund's page, Stripe's hosted checkout (the stand-in's: it sends the signed
    checkout.session.completed event to the webhook, as Stripe does, then the donor back), and the gift's page,
    which shows what the event recorded (applied once its acknowledgement is sent), with Stripe's fee (3.4 % at
    the stand-in)."""
    site, stand_in = stripe_site
    context = chromium.new_context(viewport=PHONE, locale="en", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)
    page.goto(site + "/?lang=en")
    page.locator("a.give").nth(1).click()
    assert page.locator("p.notice").count() == 0  # (no test-mode notice: a processor is configured)

    page.get_by_label("Your amount").fill("66.00")
    page.get_by_label("Name", exact=True).fill("Li Lei")
    page.get_by_label("Email (for your receipt)").fill("li.lei@example.org")
    page.get_by_role("button", name="Continue to payment").click()
    at_checkout = page.url
    page.get_by_role("button", name="Pay").click()

    back = page.url
    for _ in range(40):  # the event is applied once its acknowledgement is sent: the donor may have to reload
        if page.locator("h1").inner_text() == "Thank you":
            break
        page.wait_for_timeout(250)
        page.reload()

    assert at_checkout.startswith(stand_in.url + "/pay/cs_test_")
    assert back.startswith(site + "/give/gifts/")
    assert page.locator("h1").inner_text() == "Thank you"
    assert "CN¥2.24" in page.locator("dl.facts").inner_text()  # 3.4 % of 66.00, from the balance transaction
    screenshot(page, "gift-paid-at-stripe-en-phone")
    assert console.problems == []
    context.close()
