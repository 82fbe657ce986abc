"""The donation pages with the demo's checkout: a fund's page takes the form (CSRF-protected), refuses what breaks
a rule next to the field with nothing written, and the gift, paid on the test checkout, is in the books with its
fee; the page a donor comes back to shows the gift's real status."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from ledger.db.models import Donation, Fund, OnlineGift
from tests.pages.test_home import BROWSER

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def count(db, model) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def page(world):
    """The donation page of the world's fund (code MINE), in English: (client, its URL)."""
    client = world.app.test_client()
    with world.db.read() as session:
        code = session.get(Fund, world.fund).code
    return client, f"/give/{world.org}/{code}?lang=en"


def token_of(client, url: str) -> str:
    return CSRF.search(client.get(url, headers={"Accept": BROWSER}).get_data(as_text=True))[1]


def test_a_gift_given_on_the_page_and_paid_on_the_test_checkout_is_in_the_books_with_its_fee(world, page):
    client, url = page
    donations = count(world.db, Donation)

    sent = client.post(url, data={"csrf_token": token_of(client, url), "amount": "other", "other_amount": "88.80",
                                  "donor_name": "Li Lei", "donor_email": "li.lei@example.org",
                                  "name_public": "y", "dedication": "for the library"})
    checkout = sent.headers["Location"]
    shown = client.get(checkout).get_data(as_text=True)
    paid = client.post(checkout, data={"csrf_token": CSRF.search(shown)[1], "pay": "1"})
    status = client.get(paid.headers["Location"]).get_data(as_text=True)

    assert sent.status_code == 303 and checkout.startswith("/give/checkout/") and checkout.endswith("?lang=en")
    assert "TEST MODE" in shown and "CN¥88.80" in shown and "CN¥2.66" in shown  # 3 %, rounded half up
    assert paid.status_code == 303 and paid.headers["Location"].startswith("/give/gifts/")
    assert "Thank you" in status and "Your gift of CN¥88.80 to MINE is recorded in its books." in status
    assert count(world.db, Donation) == donations + 1
    with world.db.read() as session:
        gift = session.scalars(select(OnlineGift).order_by(OnlineGift.id.desc())).first()
        donation = session.get(Donation, gift.donation_id)
    assert (gift.status, gift.amount_minor, gift.fee_minor, gift.name_public) == ("succeeded", 8_880, 266, True)
    assert (donation.channel, donation.amount_minor, donation.fund_id) == ("online", 8_880, world.fund)
    # The checkout is spent: coming back to it shows the gift, and paying again records nothing.
    again = client.post(checkout, data={"csrf_token": CSRF.search(shown)[1], "pay": "1"})
    assert again.status_code == 303 and count(world.db, Donation) == donations + 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"amount": "other", "other_amount": "0.50"}, "Please give from CN¥1.00 to CN¥100,000.00."),
    ({"amount": "other", "other_amount": "ten"}, "Please write the amount as a number, like 100.00."),
    ({"amount": "other", "other_amount": "1.001"}, "Please write the amount as a number, like 100.00."),
    ({"donor_name": ""}, "Please give your name (up to 200 characters)."),
    ({"donor_email": "no-at-sign"}, "Please give an email address: the receipt goes there."),
])
def test_a_form_that_breaks_a_rule_is_shown_again_with_the_reason_next_to_the_field(world, page, fields, message):
    client, url = page
    before = count(world.db, OnlineGift)
    data = {"csrf_token": token_of(client, url), "amount": "10000", "donor_name": "Li Lei",
            "donor_email": "li.lei@example.org", **fields}

    answer = client.post(url, data=data)

    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and message in body and 'aria-invalid="true"' in body
    assert count(world.db, OnlineGift) == before
    assert 'value="Li Lei"' in body or not data["donor_name"]  # what the donor typed stays


def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_written(world, page):
    client, url = page
    before = count(world.db, OnlineGift)

    answer = client.post(url, data={"amount": "10000", "donor_name": "Li Lei", "donor_email": "li@example.org"})

    assert answer.status_code == 400 and "This form has expired" in answer.get_data(as_text=True)
    assert count(world.db, OnlineGift) == before


def test_the_test_checkout_can_be_left_and_then_nothing_is_recorded(world, page):
    client, url = page
    donations = count(world.db, Donation)
    sent = client.post(url, data={"csrf_token": token_of(client, url), "amount": "10000", "donor_name": "Li Lei",
                                  "donor_email": "li.lei@example.org"})
    shown = client.get(sent.headers["Location"]).get_data(as_text=True)

    left = client.post(sent.headers["Location"], data={"csrf_token": CSRF.search(shown)[1], "leave": "1"})
    status = client.get(left.headers["Location"]).get_data(as_text=True)

    assert "No payment was made: nothing was recorded." in status and count(world.db, Donation) == donations


def test_a_closed_fund_or_an_unknown_gift_is_a_page_that_says_not_found(world, page):
    client, _ = page
    for path in (f"/give/{world.org}/NO_SUCH_FUND", "/give/gifts/not-a-token", "/give/checkout/not-a-token",
                 f"/give/{world.other_org}/MINE"):
        answer = client.get(path + "?lang=en")
        assert answer.status_code == 404 and answer.mimetype == "text/html", path
        assert "There is nothing at this address." in answer.get_data(as_text=True)


def test_the_chinese_page_names_its_fields_in_chinese(world, page):
    client, url = page

    body = client.get(url.replace("lang=en", "lang=zh-CN")).get_data(as_text=True)

    assert "捐赠给MINE" in body and "其他金额" in body and "电子邮箱（用于接收捐赠收据）" in body
    assert "¥50.00" in body and "测试模式" in body


def test_forms_sent_to_the_donation_pages_are_limited_per_address(world):
    from tests.api.support import make_app

    app = make_app(world.db, RATELIMIT_GIVING="2 per minute")
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"

    answers = [client.post(url, data={"amount": "10000"}).status_code for _ in range(3)]

    assert answers == [400, 400, 429] and client.get(url).status_code == 200  # reading the page is not limited
    app.extensions["ledger_db"].dispose()


def test_with_no_processor_only_the_demo_foundation_takes_gifts_in_test_mode(world):
    """A real organisation whose Stripe key is missing must never record gifts that nobody paid: by default the
    demo's checkout takes the demo foundation's gifts only (DEMO_CHECKOUT=demo)."""
    from tests.api.support import make_app

    app = make_app(world.db, DEMO_CHECKOUT="demo")
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"
    before = count(world.db, OnlineGift)

    shown = client.get(url).get_data(as_text=True)
    sent = client.post(url, data={"amount": "10000", "donor_name": "Li Lei", "donor_email": "li@example.org"})

    assert "Online giving is not set up for this organisation yet." in shown and "<form" not in shown
    assert sent.status_code == 404 and count(world.db, OnlineGift) == before
    app.extensions["ledger_db"].dispose()
