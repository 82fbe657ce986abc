"""Gifts from a fund's donation page: judged and recorded pending, then recorded as a donation with the
processor's fee exactly once when paid (here through the demo's stand-in), set aside when the payment differs,
and never posted when the donor leaves."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from ledger.books.balances import balance
from ledger.books.organisations import set_fund_status
from ledger.core.chart import Role
from ledger.core.errors import AmountInvalid, InvalidInput, NotFound
from ledger.db.models import Donation, Donor, Fund, OnlineGift
from ledger.payments import demo_channel
from ledger.payments.gifts import GiftForm, Payment, donation_page, gift_by_token, gift_paid, start_gift
from tests.builders import new_books

DAY = dt.date(2026, 11, 20)


def form(**changes) -> GiftForm:
    values = {"amount_minor": 10_000, "donor_name": "李雷", "donor_email": "li.lei@example.org", "name_public": True,
              "dedication": "为了孩子们"}
    return GiftForm(**{**values, **changes})


def fund_code(db, fund_id: int) -> str:
    with db.read() as session:
        return session.get(Fund, fund_id).code


def started(db, books, **changes) -> str:
    code = fund_code(db, books.open_fund)
    return db.write(lambda session: start_gift(
        session, donation_page(session, books.organisation_id, code), form(**changes), "demo").token)


def count(db, model) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_the_page_offers_the_presets_within_the_funds_bounds(db):
    books = new_books(db)
    code = fund_code(db, books.open_fund)

    with db.read() as session:
        page = donation_page(session, books.organisation_id, code)

    assert page.fund.id == books.open_fund and page.presets == (5_000, 10_000, 20_000, 50_000)
    assert (page.fund.giving_min_minor, page.fund.giving_max_minor) == (100, 10_000_000)


@pytest.mark.parametrize(("changes", "error", "field"), [
    ({"amount_minor": 99}, AmountInvalid, "amount"),
    ({"amount_minor": 10_000_001}, AmountInvalid, "amount"),
    ({"donor_name": "  "}, InvalidInput, "donor_name"),
    ({"donor_email": ""}, InvalidInput, "donor_email"),
    ({"donor_email": "not an address"}, InvalidInput, "email"),
    ({"dedication": "长" * 501}, InvalidInput, "dedication"),
])
def test_a_form_that_breaks_a_rule_is_refused_naming_the_field_and_nothing_is_written(db, changes, error, field):
    books = new_books(db)
    before = count(db, OnlineGift)

    with pytest.raises(error) as refused:
        started(db, books, **changes)

    assert refused.value.field == field and count(db, OnlineGift) == before


def test_a_closed_fund_has_no_donation_page(db):
    books = new_books(db)
    db.write(lambda session: set_fund_status(session, books.organisation_id, books.open_fund, "closed"))

    with pytest.raises(NotFound), db.read() as session:
        donation_page(session, books.organisation_id, fund_code(db, books.open_fund))


def test_a_paid_gift_is_one_online_donation_with_its_fee_however_often_it_is_reported(db):
    books = new_books(db)
    token = started(db, books)

    first = db.write(lambda session: demo_channel.pay(session, token, DAY))
    again = db.write(lambda session: demo_channel.pay(session, token, DAY))

    assert first.status == again.status == "succeeded" and first.donation_id == again.donation_id
    assert first.fee_minor == 300  # 3 % of 100.00
    with db.read() as session:
        donation = session.get(Donation, first.donation_id)
        donor = session.get(Donor, donation.donor_id)
        clearing, fees, revenue = (balance(session, books.account(role), books.open_fund, "CNY")
                                   for role in (Role.PROCESSOR_CLEARING, Role.PROCESSING_FEES, Role.DONATION_REVENUE))
    assert (donation.channel, donation.amount_minor, donation.received_on) == ("online", 10_000, DAY)
    assert "为了孩子们" in donation.description and donation.reference == f"demo_{first.id}"
    assert (donor.name, donor.email, donor.public_name_consent) == ("李雷", "li.lei@example.org", True)
    assert clearing.debits_minor - clearing.credits_minor == 9_700
    assert fees.debits_minor == 300 and revenue.credits_minor == 10_000


def test_a_returning_donor_is_found_by_email(db):
    books = new_books(db)
    tokens = [started(db, books, donor_name=name) for name in ("韩梅梅", "Han Meimei")]

    gifts = [db.write(lambda session, t=t: demo_channel.pay(session, t, DAY)) for t in tokens]

    with db.read() as session:
        donors = {session.get(Donation, gift.donation_id).donor_id for gift in gifts}
    assert len(donors) == 1


def test_a_payment_that_differs_from_the_gift_is_set_aside_and_posts_nothing(db):
    books = new_books(db)
    token = started(db, books)
    donations = count(db, Donation)

    gift = db.write(lambda session: gift_paid(session, token, Payment("pi_1", 9_999, "cny", 0, DAY), "test"))

    assert gift.status == "review" and gift.review_reason == "paid 99.99 CNY, asked 100.00 CNY"
    assert gift.donation_id is None and count(db, Donation) == donations


def test_a_gift_the_donor_left_is_never_posted_even_if_paid_later(db):
    books = new_books(db)
    token = started(db, books)
    donations = count(db, Donation)

    db.write(lambda session: demo_channel.leave(session, token))
    gift = db.write(lambda session: demo_channel.pay(session, token, DAY))

    assert gift.status == "expired" and count(db, Donation) == donations


def test_two_reports_of_one_payment_at_once_record_one_donation(postgres_db):
    db = postgres_db
    books = new_books(db)
    token = started(db, books)
    donations = count(db, Donation)
    barrier = threading.Barrier(2)

    def report():
        barrier.wait()
        db.write(lambda session: demo_channel.pay(session, token, DAY))

    threads = [threading.Thread(target=report) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with db.read() as session:
        gift = gift_by_token(session, token)
    assert gift.status == "succeeded" and count(db, Donation) == donations + 1
