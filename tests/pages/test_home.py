"""The public home page: every organisation with the funds that take gifts, in Chinese or English, under the
pages' own Content Security Policy; the root still answers JSON to a client that is not a browser."""

from __future__ import annotations

import re
import uuid

from api.edge.limits import API_POLICY, PAGE_POLICY
from ledger.books.organisations import create_fund, get_organisation, set_fund_status

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _page(world, path: str = "/", language: str | None = None):
    headers = {"Accept": BROWSER, **({"Accept-Language": language} if language else {})}
    return world.app.test_client().get(path, headers=headers)


def test_a_browser_gets_every_organisation_with_the_funds_that_take_gifts(world):
    closing, open_name, closed_name = (f"{word}-{uuid.uuid4().hex[:8]}" for word in ("C", "open", "closed"))
    opened = world.db.write(lambda session: create_fund(
        session, world.org, code=closing + "o", name=open_name, kind="project", restricted=True, purpose="助学"))
    closed = world.db.write(lambda session: create_fund(
        session, world.org, code=closing, name=closed_name, kind="project", restricted=False))
    world.db.write(lambda session: set_fund_status(session, world.org, closed.id, "closed"))
    with world.db.read() as session:
        names = [get_organisation(session, org).name for org in (world.org, world.other_org)]

    response = _page(world, language="zh-CN,zh;q=0.9")

    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert all(name in page for name in names) and open_name in page and "助学" in page
    assert closed_name not in page and opened.id
    assert '<html lang="zh-CN">' in page and "向基金捐赠" in page and "限定性资金" in page


def test_the_language_comes_from_the_url_then_accept_language_then_chinese(world):
    def language_of(response) -> str:
        return re.search(r'<html lang="([^"]+)">', response.get_data(as_text=True))[1]

    assert language_of(_page(world, "/?lang=en", "zh-CN")) == "en"
    assert language_of(_page(world, "/?lang=zh-CN", "en")) == "zh-CN"
    assert language_of(_page(world, "/", "en-GB,en;q=0.9")) == "en"
    assert language_of(_page(world, "/", "fr")) == "zh-CN"
    english = _page(world, "/?lang=en").get_data(as_text=True)
    assert "Give to a fund" in english and "向基金捐赠" not in english
    # The switch names the other language in itself and keeps the page.
    assert re.search(r'<a class="switch" href="/\?lang=zh-CN" hreflang="zh-CN" lang="zh-CN">中文</a>', english)


def test_a_page_sends_the_pages_policy_and_meets_it(world):
    response = _page(world, "/?lang=en")
    page = response.get_data(as_text=True)
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)">', page)[1]
    with world.app.test_client().get(stylesheet) as css:
        css_type, css_status = css.mimetype, css.status_code

    assert response.headers["Content-Security-Policy"] == PAGE_POLICY
    assert "Accept-Language" in response.headers["Vary"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    # The policy allows no script and no inline style: the page has neither.
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert css_status == 200 and css_type == "text/css" and stylesheet.startswith("/assets/")


def test_a_client_that_is_not_a_browser_still_gets_json_at_the_root(world):
    for accept in ("application/json", "*/*", None):
        response = world.app.test_client().get("/", headers={"Accept": accept} if accept else {})
        assert response.mimetype == "application/json" and response.json["api"] == "/api/v1", accept
        assert response.headers["Content-Security-Policy"] == API_POLICY
