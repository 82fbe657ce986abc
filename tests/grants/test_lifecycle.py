"""The grant lifecycle at the ledger: separation of duties judged where the approval is written, the currency of
the fund, and the payment out of the bank account named."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ledger.access.users import create_user
from ledger.books.balances import balance
from ledger.books.charts import create_account
from ledger.books.entries import reverse_entry
from ledger.books.organisations import set_dual_approval_threshold
from ledger.core.chart import Role
from ledger.core.errors import (
    CurrencyMismatch,
    EntryKeptByRecord,
    InvalidInput,
    InvalidState,
    SeparationOfDuties,
)
from ledger.db.models import Grant, GrantApproval, GrantPayment
from ledger.giving.donations import GiftRecord, record_donation
from ledger.grants.lifecycle import GrantRequest, approve_grant, cancel_grant, pay_grant, request_grant
from tests.builders import new_books

DAY = dt.date(2026, 11, 2)


def _people(db, count: int) -> list[int]:
    return db.write(lambda session: [create_user(session, email=f"p{n}-{uuid.uuid4().hex[:8]}@example.org",
                                                 password="long enough password").id for n in range(count)])


def _request(db, books, requester: int, amount: int = 1_000, currency: str = "CNY"):
    return db.write(lambda session: request_grant(
        session, books.organisation_id, GrantRequest(books.open_fund, amount, currency, "payee", "purpose",
                                                     "charitable_activities"), requested_by_user_id=requester))


def _approve(db, books, grant_id: int, approver: int):
    return db.write(lambda session: approve_grant(
        session, books.organisation_id, grant_id, approver_user_id=approver, effective_date=DAY,
        idempotency_key=uuid.uuid4().hex, recorded_by="approver"))


def test_the_same_approver_twice_is_refused_where_the_approval_is_written(db):
    books = new_books(db)
    requester, approver = _people(db, 2)
    db.write(lambda session: set_dual_approval_threshold(session, books.organisation_id, 0))
    grant = _request(db, books, requester)
    _approve(db, books, grant.id, approver)

    with pytest.raises(SeparationOfDuties) as refused:
        _approve(db, books, grant.id, approver)

    assert "second, different approver" in refused.value.message
    with db.read() as session:
        assert session.scalar(select(func.count()).where(GrantApproval.grant_id == grant.id)) == 1


def test_a_grant_in_another_currency_than_its_funds_is_refused(db):
    books = new_books(db)
    [requester] = _people(db, 1)

    with pytest.raises(CurrencyMismatch) as refused:
        _request(db, books, requester, currency="USD")

    assert refused.value.field == "currency"


def test_a_grant_is_paid_out_of_the_bank_account_named(db):
    books = new_books(db)
    requester, approver = _people(db, 2)
    second = db.write(lambda session: create_account(
        session, books.organisation_id, code="1002.02", name_zh="银行存款—二", name_en="Second bank", type="asset",
        role="bank").id)
    gift = GiftRecord(books.open_fund, 9_000, "CNY", "bank", DAY, account_id=second)
    db.write(lambda session: record_donation(session, books.organisation_id, gift, idempotency_key="gift",
                                             recorded_by="manager"))
    grant = _request(db, books, requester, 4_000)
    _approve(db, books, grant.id, approver)

    db.write(lambda session: pay_grant(session, books.organisation_id, grant.id, paid_on=DAY,
                                       idempotency_key="pay", recorded_by="payer", paid_by_user_id=approver,
                                       bank_account_id=second))

    with db.read() as session:
        paid_from = balance(session, second, books.open_fund, "CNY")
        default = balance(session, books.account(Role.BANK), books.open_fund, "CNY")
    assert (paid_from.debits_minor, paid_from.credits_minor) == (9_000, 4_000)
    assert (default.debits_minor, default.credits_minor) == (0, 0)


def _funded_approved_grant(db, books, amount: int = 10_000):
    requester, approver = _people(db, 2)
    gift = GiftRecord(books.open_fund, 50_000, "CNY", "bank", DAY)
    db.write(lambda session: record_donation(session, books.organisation_id, gift, idempotency_key=uuid.uuid4().hex,
                                             recorded_by="manager"))
    grant = _request(db, books, requester, amount)
    _approve(db, books, grant.id, approver)
    return grant, requester, approver


def _pay(db, books, grant_id: int, payer: int, amount: int | None = None):
    return db.write(lambda session: pay_grant(session, books.organisation_id, grant_id, paid_on=DAY,
                                              idempotency_key=uuid.uuid4().hex, recorded_by="payer",
                                              paid_by_user_id=payer, amount_minor=amount))


def _cancel(db, books, grant_id: int, by: int):
    return db.write(lambda session: cancel_grant(session, books.organisation_id, grant_id, cancelled_on=DAY,
                                                 reason="the project was called off", idempotency_key=uuid.uuid4().hex,
                                                 recorded_by="manager", cancelled_by_user_id=by))


def _fund_totals(db, books, role: Role) -> int:
    with db.read() as session:
        totals = balance(session, books.account(role), books.open_fund, "CNY")
    return totals.debits_minor - totals.credits_minor


def test_a_grant_is_paid_in_parts_and_never_past_what_was_approved(db):
    books = new_books(db)
    grant, _, approver = _funded_approved_grant(db, books)

    first = _pay(db, books, grant.id, approver, 3_000)
    with pytest.raises(InvalidInput) as refused:
        _pay(db, books, grant.id, approver, 7_001)
    rest = _pay(db, books, grant.id, approver)

    assert (first.status, first.paid_minor) == ("partly_paid", 3_000)
    assert refused.value.field == "amount_minor" and "at most 7000" in refused.value.message
    assert (rest.status, rest.paid_minor) == ("paid", 10_000)
    with db.read() as session:
        payments = session.scalars(select(GrantPayment).where(GrantPayment.grant_id == grant.id)
                                   .order_by(GrantPayment.id)).all()
    assert [(payment.amount_minor, payment.paid_by_user_id) for payment in payments] == [
        (3_000, approver), (7_000, approver)]
    assert _fund_totals(db, books, Role.GRANTS_PAYABLE) == 0
    assert _fund_totals(db, books, Role.BANK) == 40_000


def test_whoever_requested_a_grant_cannot_pay_it(db):
    books = new_books(db)
    grant, requester, _ = _funded_approved_grant(db, books)

    with pytest.raises(SeparationOfDuties) as refused:
        _pay(db, books, grant.id, requester)

    assert "cannot pay" in refused.value.message
    with db.read() as session:
        assert session.get(Grant, grant.id).paid_minor == 0
        assert session.scalar(select(func.count()).where(GrantPayment.grant_id == grant.id)) == 0


def test_the_database_refuses_the_requester_as_payer_and_payments_past_the_amount(db):
    books = new_books(db)
    grant, requester, approver = _funded_approved_grant(db, books)
    paid = _pay(db, books, grant.id, approver, 1_000)
    with db.read() as session:
        payment = session.scalars(select(GrantPayment).where(GrantPayment.grant_id == grant.id)).one()
        row = {column.name: getattr(payment, column.name) for column in GrantPayment.__table__.columns}

    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(update(GrantPayment.__table__).where(GrantPayment.id == row["id"])
                           .values(paid_by_user_id=requester))
    with pytest.raises(IntegrityError), db.engine.begin() as connection:  # a payer left out must be said unknown
        connection.execute(update(GrantPayment.__table__).where(GrantPayment.id == row["id"])
                           .values(paid_by_user_id=None))
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(update(Grant.__table__).where(Grant.id == grant.id)
                           .values(paid_minor=10_001, status="paid"))
    assert paid.paid_minor == 1_000


def test_cancelling_an_approved_grant_gives_the_commitment_back_to_the_fund(db):
    books = new_books(db)
    grant, _, approver = _funded_approved_grant(db, books)
    assert _fund_totals(db, books, Role.GRANTS_PAYABLE) == -10_000

    cancelled = _cancel(db, books, grant.id, approver)

    assert (cancelled.status, cancelled.cancelled_minor, cancelled.paid_minor) == ("cancelled", 10_000, 0)
    assert cancelled.cancelled_by_user_id == approver and cancelled.cancel_reason == "the project was called off"
    assert _fund_totals(db, books, Role.GRANTS_PAYABLE) == 0
    assert _fund_totals(db, books, Role.PROGRAM_EXPENSE) == 0
    with pytest.raises(InvalidState):
        _pay(db, books, grant.id, approver)


def test_cancelling_a_partly_paid_grant_cancels_only_the_unpaid_part(db):
    books = new_books(db)
    grant, _, approver = _funded_approved_grant(db, books)
    _pay(db, books, grant.id, approver, 4_000)

    cancelled = _cancel(db, books, grant.id, approver)

    assert (cancelled.status, cancelled.paid_minor, cancelled.cancelled_minor) == ("cancelled", 4_000, 6_000)
    assert _fund_totals(db, books, Role.GRANTS_PAYABLE) == 0
    assert _fund_totals(db, books, Role.PROGRAM_EXPENSE) == 4_000
    assert _fund_totals(db, books, Role.BANK) == 46_000


def test_a_wholly_paid_or_unapproved_grant_is_not_cancelled_and_its_entries_are_not_reversed_alone(db):
    books = new_books(db)
    grant, requester, approver = _funded_approved_grant(db, books)
    paid = _pay(db, books, grant.id, approver)
    unapproved = _request(db, books, requester)

    for grant_id in (paid.id, unapproved.id):
        with pytest.raises(InvalidState):
            _cancel(db, books, grant_id, approver)
    with db.read() as session:
        payment_entry = session.scalars(select(GrantPayment.entry_id).where(GrantPayment.grant_id == grant.id)).one()
    with pytest.raises(EntryKeptByRecord) as refused:
        db.write(lambda session: reverse_entry(session, books.organisation_id, payment_entry,
                                               idempotency_key="undo", recorded_by="manager"))
    assert refused.value.details["grant_id"] == grant.id


def test_a_payment_or_cancellation_dated_before_the_approval_or_a_payment_is_refused(db):
    books = new_books(db)
    grant, _, approver = _funded_approved_grant(db, books)  # approved on DAY
    _pay(db, books, grant.id, approver, 1_000)

    with pytest.raises(InvalidInput) as early_payment:
        db.write(lambda session: pay_grant(session, books.organisation_id, grant.id,
                                           paid_on=DAY - dt.timedelta(days=1), idempotency_key=uuid.uuid4().hex,
                                           recorded_by="payer", paid_by_user_id=approver))
    with pytest.raises(InvalidInput) as early_cancellation:
        db.write(lambda session: cancel_grant(session, books.organisation_id, grant.id,
                                              cancelled_on=DAY - dt.timedelta(days=1), reason="late",
                                              idempotency_key=uuid.uuid4().hex, recorded_by="manager",
                                              cancelled_by_user_id=approver))

    assert early_payment.value.field == early_cancellation.value.field == "effective_date"
    with db.read() as session:
        assert session.get(Grant, grant.id).paid_minor == 1_000
