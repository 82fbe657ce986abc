"""The manager's reconciliation screen in a real browser (Debian's Chromium, no JavaScript needed): the demo's
administrator signs in, finds the demo's bank account reconciled, imports the bank's next statement (a GBK file in a
Chinese bank's layout), accepts the suggestion for a gift the books hold, records the bank's interest in the books
from its line, and reads the report balancing — on the demo served as `make run` serves it, in both languages."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from ledger.demo import ADMIN, DEMO_PASSWORD
from tests.pages.browser import PHONE, Console, screenshot
from tests.serving.servers import served_like_make_run, stop


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """The demo on a site of its own: this test writes to its books."""
    folder = tmp_path_factory.mktemp("manage-site")
    (folder / "home").mkdir()
    server, port = served_like_make_run(folder / "home", f"sqlite:///{folder / 'manage.sqlite3'}")
    yield f"http://127.0.0.1:{port}"
    stop(server)


def api(site: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(site + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex,
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def signed_in_at_the_bank(page, url: str, labels: tuple[str, str, str]) -> None:
    """Signs in as the demo's administrator through the form (its labels in the page's language) and opens the
    demo's bank account."""
    email, password, button = labels
    page.goto(url)
    page.get_by_label(email).fill(ADMIN)
    page.get_by_label(password).fill(DEMO_PASSWORD)
    page.get_by_role("button", name=button).click()
    page.get_by_role("link", name="1002").click()


def next_statement(closing_minor: int) -> bytes:
    """The bank's December export: the gift (¥88.00 from 张伟) and the month's interest (¥12.34), the balance after
    each, as a Chinese bank writes its CSV (GBK, 借方/贷方 columns)."""
    rows = ["交易日期,交易流水号,摘要,用途,借方发生额,贷方发生额,余额,对方户名",
            f"2026-11-27,HX20261127901,转账收入,捐赠,,88.00,{(closing_minor + 8_800) / 100:.2f},张伟",
            f"2026-11-30,HX20261130902,利息,结息,,12.34,{(closing_minor + 10_034) / 100:.2f},银行"]
    return ("\n".join(rows) + "\n").encode("gbk")


def test_the_administrator_reconciles_the_demo_bank_in_the_browser(chromium, site, tmp_path):
    token = api(site, "POST", "/api/v1/tokens", {"email": ADMIN, "password": DEMO_PASSWORD})["token"]
    me = api(site, "GET", "/api/v1/me", token=token)
    organisation = me["roles"][0]["organisation_id"]
    accounts = api(site, "GET", f"/api/v1/organisations/{organisation}/accounts", token=token)
    bank = next(row for row in accounts if row["code"] == "1002")
    funds = api(site, "GET", f"/api/v1/organisations/{organisation}/funds", token=token)["items"]
    before = api(site, "GET", f"/api/v1/organisations/{organisation}/reconciliation/report?account_id={bank['id']}"
                              "&start=2026-09-01&end=2026-11-30", token=token)
    api(site, "POST", f"/api/v1/organisations/{organisation}/donations", {
        "fund_id": funds[0]["id"], "amount_minor": 8_800, "currency": "CNY", "channel": "bank",
        "received_on": "2026-11-26", "description": "张伟 转账捐赠"}, token=token)
    statement = tmp_path / "icbc-2026-11-27.csv"
    statement.write_bytes(next_statement(before["bank_closing_minor"]))

    context = chromium.new_context(locale="en", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)
    signed_in_at_the_bank(page, site + "/manage/?lang=en", ("Email", "Password", "Sign in"))
    assert "Reconciled:" in page.locator("#status").inner_text()  # the demo's bank, as the demo left it
    screenshot(page, "manage-account-en")

    page.get_by_label("The file, as the bank gave it").set_input_files(str(statement))
    page.get_by_label("Format").select_option("csv")
    page.get_by_label("CSV layout").select_option("cn_bank")
    page.get_by_role("button", name="Import", exact=True).click()
    assert "Statement imported: 2 new line(s), 0 already imported." in page.locator("p.notice").inner_text()

    gift_line = page.locator("tr[id^=line-]", has_text="CN¥88.00")
    assert "张伟 转账捐赠" in gift_line.locator("form.suggestion").inner_text()
    gift_line.get_by_role("button", name="Accept").click()
    assert "Matched: CN¥88.00." in page.locator("p.notice").inner_text()

    interest = page.locator("tr[id^=line-]", has_text="CN¥12.34")
    interest.locator("summary").click()
    interest.get_by_label("What it is").select_option("entry")
    interest.get_by_label("Other account (for an entry)").select_option(label=_interest_account(accounts))
    interest.get_by_role("button", name="Record and match").click()
    assert "Recorded in the books and matched to its line." in page.locator("p.notice").inner_text()
    assert page.locator("tr[id^=line-]").count() == 0

    page.get_by_role("link", name="The report").click()
    closing = before["bank_closing_minor"] + 10_034
    assert page.locator("#bank-closing").inner_text() == f"CN¥{closing / 100:,.2f}"
    assert page.locator("#books-closing").inner_text() == page.locator("#bank-closing").inner_text()
    assert page.locator("#unexplained").inner_text() == "CN¥0.00"
    assert "Reconciled:" in page.locator("#status").inner_text()
    screenshot(page, "manage-report-en")
    assert console.problems == []
    context.close()


def _interest_account(accounts: list[dict]) -> str:
    """The option's text for where interest goes: 5301 筹资费用, credited (the standard nets deposit interest against
    its fundraising costs), as the demo books its own."""
    account = next(row for row in accounts if row["code"] == "5301")
    return f"{account['code']} {account['name_en']}"


def test_the_screen_on_a_phone_in_chinese(chromium, site):
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    console = Console(page)
    signed_in_at_the_bank(page, site + "/manage/", ("邮箱", "密码", "登录"))

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    assert page.locator("h1").inner_text().startswith("1002")
    assert page.get_by_role("heading", name="银行已记、账簿未记").count() == 1
    assert overflow <= 0
    screenshot(page, "manage-account-zh-CN-phone")
    assert console.problems == []
    context.close()
