"""The grant lifecycle at the ledger: separation of duties judged where the approval is written, the currency of
the fund, and the payment out of the bank account named."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from ledger.access.users import create_user
from ledger.books.balances import balance
from ledger.books.charts import create_account
from ledger.books.organisations import set_dual_approval_threshold
from ledger.core.chart import Role
from ledger.core.errors import CurrencyMismatch, SeparationOfDuties
from ledger.db.models import GrantApproval
from ledger.giving.donations import GiftRecord, record_donation
from ledger.grants.lifecycle import GrantRequest, approve_grant, pay_grant, request_grant
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
                                       idempotency_key="pay", recorded_by="payer", bank_account_id=second))

    with db.read() as session:
        paid_from = balance(session, second, books.open_fund, "CNY")
        default = balance(session, books.account(Role.BANK), books.open_fund, "CNY")
    assert (paid_from.debits_minor, paid_from.credits_minor) == (9_000, 4_000)
    assert (default.debits_minor, default.credits_minor) == (0, 0)
