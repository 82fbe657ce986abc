"""Refunds at the ledger: out of the very account the gift went into, never past the gift, not before it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from ledger.books.balances import balance
from ledger.books.charts import create_account
from ledger.books.entries import get_entry, reverse_entry
from ledger.core.chart import Role
from ledger.core.errors import EntryKeptByRecord, InvalidInput, InvalidState, NotFound
from ledger.giving.donations import GiftRecord, get_donation, record_donation
from ledger.giving.refunds import cancel_refund, refund_donation
from tests.builders import balances_of, new_books

DAY = dt.date(2026, 11, 2)


def _gift(db, books, amount: int, **extra):
    record = GiftRecord(books.open_fund, amount, "CNY", extra.pop("channel", "bank"), DAY, **extra)
    return db.write(lambda session: record_donation(session, books.organisation_id, record,
                                                    idempotency_key=uuid.uuid4().hex, recorded_by="manager"))


def _refund(db, books, donation_id: int, amount: int, day: dt.date = DAY):
    return db.write(lambda session: refund_donation(
        session, books.organisation_id, donation_id, amount_minor=amount, refunded_on=day, reason="",
        idempotency_key=uuid.uuid4().hex, recorded_by="manager"))


def _bank(db, books, account_id: int) -> int:
    with db.read() as session:
        totals = balance(session, account_id, books.open_fund, "CNY")
    return totals.debits_minor - totals.credits_minor


def test_a_refund_leaves_the_bank_account_the_gift_went_into(db):
    books = new_books(db)
    second = db.write(lambda session: create_account(
        session, books.organisation_id, code="1002.02", name_zh="银行存款—二", name_en="Second bank", type="asset",
        role="bank").id)
    gift = _gift(db, books, 5_000, account_id=second)
    _gift(db, books, 7_000)

    _refund(db, books, gift.id, 2_000)

    assert _bank(db, books, second) == 3_000
    assert _bank(db, books, books.account(Role.BANK)) == 7_000


@pytest.mark.parametrize(("amount", "day", "field"), [
    (5_001, DAY, "amount_minor"), (0, DAY, "amount_minor"), (100, DAY - dt.timedelta(days=1), "refunded_on"),
])
def test_a_refund_past_the_gift_or_before_it_is_refused_and_writes_nothing(db, amount, day, field):
    books = new_books(db)
    gift = _gift(db, books, 5_000)
    before = balances_of(db, books.organisation_id)

    with pytest.raises(InvalidInput) as refused:
        _refund(db, books, gift.id, amount, day)

    assert refused.value.field == field
    assert balances_of(db, books.organisation_id) == before


def test_an_in_kind_gift_is_not_refunded_in_money(db):
    books = new_books(db)
    gift = _gift(db, books, 5_000, channel="in_kind", in_kind_description="books", valuation_basis="invoice")

    with pytest.raises(InvalidState) as refused:
        _refund(db, books, gift.id, 100)

    assert refused.value.field == "donation_id"


def _cancel(db, books, donation_id: int, refund_id: int, day: dt.date = DAY):
    return db.write(lambda session: cancel_refund(
        session, books.organisation_id, donation_id, refund_id, cancelled_on=day, reason="recorded by mistake",
        idempotency_key=uuid.uuid4().hex, recorded_by="manager"))


def test_a_refund_recorded_by_mistake_is_cancelled_through_its_record(db):
    books = new_books(db)
    bank = books.account(Role.BANK)
    donation = _gift(db, books, 10_000)
    mistaken = _refund(db, books, donation.id, 4_000)

    cancelled = _cancel(db, books, donation.id, mistaken.id)

    assert cancelled.cancelled_entry_id is not None and cancelled.cancel_reason == "recorded by mistake"
    assert cancelled.cancelled_by == "manager" and cancelled.cancelled_at is not None
    assert _bank(db, books, bank) == 10_000
    with db.read() as session:
        assert get_donation(session, books.organisation_id, donation.id).refunded_minor == 0
        reversal_entry = get_entry(session, books.organisation_id, cancelled.cancelled_entry_id)
    assert reversal_entry.reverses_entry_id == mistaken.entry_id
    # The whole gift can be refunded again: the mistaken refund no longer counts.
    assert _refund(db, books, donation.id, 10_000).amount_minor == 10_000


def test_a_refund_is_cancelled_once_and_its_entries_are_not_reversed_alone(db):
    books = new_books(db)
    donation = _gift(db, books, 10_000)
    mistaken = _refund(db, books, donation.id, 4_000)
    cancelled = _cancel(db, books, donation.id, mistaken.id)

    with pytest.raises(InvalidState) as twice:
        _cancel(db, books, donation.id, mistaken.id)
    for entry_id in (mistaken.entry_id, cancelled.cancelled_entry_id):
        with pytest.raises(EntryKeptByRecord):
            db.write(lambda session, entry_id=entry_id: reverse_entry(
                session, books.organisation_id, entry_id, idempotency_key=uuid.uuid4().hex, recorded_by="manager"))

    assert twice.value.field == "refund_id"
    with db.read() as session:
        assert get_donation(session, books.organisation_id, donation.id).refunded_minor == 0


def test_a_refund_of_another_gift_or_a_date_before_the_refund_is_refused(db):
    books = new_books(db)
    donation, other = _gift(db, books, 10_000), _gift(db, books, 5_000)
    mistaken = _refund(db, books, donation.id, 4_000, dt.date(2026, 11, 5))

    with pytest.raises(NotFound) as elsewhere:
        _cancel(db, books, other.id, mistaken.id)
    with pytest.raises(InvalidInput) as early:
        _cancel(db, books, donation.id, mistaken.id, dt.date(2026, 11, 4))

    assert elsewhere.value.field == "refund_id" and early.value.field == "cancelled_on"
    with db.read() as session:
        assert get_donation(session, books.organisation_id, donation.id).refunded_minor == 4_000
