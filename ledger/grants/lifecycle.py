"""Grants: money leaving a fund for a payee, in three steps with separation of duties.

requested → approved → paid, or requested → rejected. The person who asked cannot approve; above the
organisation's threshold two different people must approve. Approval posts the cost and the amount owed
(``recipes.grant_approved``), payment the money leaving the bank (``recipes.grant_paid``). The database keeps
the same rules: an approval row cannot name the requester, nor the same approver twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry
from ledger.books.organisations import get_fund, get_organisation
from ledger.core.errors import CurrencyMismatch, FundClosed, InvalidState, SeparationOfDuties
from ledger.core.money import Money
from ledger.core.recipes import Particulars, grant_approved, grant_paid
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import FundStatus, GrantCategory, GrantStatus
from ledger.db.engine import insert_unless_taken
from ledger.db.listing import OwnedRow, Page, get_owned, get_owned_with_chart, keyset_page
from ledger.db.models import Grant, GrantApproval
from ledger.db.types import utc_now


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A grant as its requester writes it down: from which fund, how much, to whom, for what, and what kind of
    cost it is."""

    fund_id: int
    amount_minor: int
    currency: str
    payee: str
    purpose: str
    category: str


def request_grant(session: Session, organisation_id: int, request: GrantRequest, *,
                  requested_by_user_id: int) -> Grant:
    """Records the request. Nothing is posted until the grant is approved."""
    organisation = get_organisation(session, organisation_id)
    fund = get_fund(session, organisation_id, request.fund_id)
    if request.currency != fund.currency:
        raise CurrencyMismatch(f"the fund keeps {fund.currency}", field="currency")
    if fund.status != FundStatus.OPEN:
        raise FundClosed(f"fund {fund.id} is closed", field="fund_id")
    amount = Money.positive(request.amount_minor, request.currency)
    category = one_of(request.category, GrantCategory, "category")
    threshold = organisation.dual_approval_threshold_minor
    grant = Grant(organisation_id=organisation_id, fund_id=fund.id, currency=fund.currency,
                  amount_minor=amount.amount_minor, payee=required_text(request.payee, "payee", 200),
                  purpose=required_text(request.purpose, "purpose", 500), category=category,
                  status=GrantStatus.REQUESTED,
                  approvals_required=2 if threshold is not None and amount.amount_minor > threshold else 1,
                  requested_by_user_id=requested_by_user_id, requested_at=utc_now())
    session.add(grant)
    session.flush()
    return grant


def get_grant(session: Session, organisation_id: int, grant_id: int) -> Grant:
    return get_owned(session, Grant, organisation_id, grant_id, "grant")


def _grant_to_step(session: Session, organisation_id: int, grant_id: int) -> OwnedRow:
    """The grant, locked until the transaction ends (PostgreSQL) and read afresh even if the session holds it, so
    two steps of one grant (two approvals) are judged one after the other; with the chart's version."""
    return get_owned_with_chart(session, Grant, organisation_id, grant_id, "grant", for_update=True)


def list_grants(session: Session, organisation_id: int, *, fund_ids: frozenset[int] | None, status: str | None,
                after: int | None, limit: int) -> Page:
    """A page of grants, only of ``fund_ids`` unless None, only in ``status`` unless None."""
    query = select(Grant).where(Grant.organisation_id == organisation_id)
    if fund_ids is not None:
        query = query.where(Grant.fund_id.in_(sorted(fund_ids)))
    if status is not None:
        query = query.where(Grant.status == status)
    return keyset_page(session, query, Grant.id, after, limit)


def approvers_of(session: Session, grant_ids: list[int]) -> dict[int, list[int]]:
    """Who approved each grant, in the order they did: one query for a whole page of grants."""
    approvers: dict[int, list[int]] = {grant_id: [] for grant_id in grant_ids}
    for grant_id, user_id in session.execute(
        select(GrantApproval.grant_id, GrantApproval.user_id).where(GrantApproval.grant_id.in_(grant_ids))
        .order_by(GrantApproval.approved_at, GrantApproval.user_id)
    ):
        approvers[grant_id].append(user_id)
    return approvers


def approve_grant(session: Session, organisation_id: int, grant_id: int, *, approver_user_id: int,
                  effective_date: dt.date, idempotency_key: str, recorded_by: str) -> Grant:
    """Adds one approval; the last one needed posts the grant's cost and the amount owed to the payee."""
    grant, chart_version = _grant_to_step(session, organisation_id, grant_id)
    if grant.status != GrantStatus.REQUESTED:
        raise InvalidState(f"grant {grant_id} is {grant.status}, not awaiting approval", field="grant_id")
    if approver_user_id == grant.requested_by_user_id:
        raise SeparationOfDuties("whoever requested a grant cannot approve it", field="grant_id")
    approval = insert_unless_taken(session, GrantApproval, dict(
        grant_id=grant_id, user_id=approver_user_id, requested_by_user_id=grant.requested_by_user_id,
        approved_at=utc_now()), key=("grant_id", "user_id"))
    if approval is None:
        raise SeparationOfDuties("this grant needs a second, different approver", field="grant_id")
    count = session.scalar(select(func.count()).where(GrantApproval.grant_id == grant_id))
    if count >= grant.approvals_required:
        draft = grant_approved(load_chart(session, organisation_id, chart_version), grant.fund_id,
                               Money(grant.amount_minor, grant.currency), grant.category,
                               Particulars(effective_date, idempotency_key, recorded_by,
                                           f"grant {grant.id} to {grant.payee}: {grant.purpose}"[:500]))
        grant.approved_entry_id = post_entry(session, draft).id
        grant.status, grant.decided_at = GrantStatus.APPROVED, utc_now()
    session.flush()
    return grant


def pay_grant(session: Session, organisation_id: int, grant_id: int, *, paid_on: dt.date, idempotency_key: str,
              recorded_by: str, bank_account_id: int | None = None) -> Grant:
    """Pays an approved grant out of the fund's bank account (the role's default unless named)."""
    grant, chart_version = _grant_to_step(session, organisation_id, grant_id)
    if grant.status != GrantStatus.APPROVED:
        raise InvalidState(f"grant {grant_id} is {grant.status}; only an approved grant is paid", field="grant_id")
    particulars = Particulars(paid_on, idempotency_key, recorded_by, f"grant {grant.id} paid to {grant.payee}"[:500])
    draft = grant_paid(load_chart(session, organisation_id, chart_version), grant.fund_id,
                       Money(grant.amount_minor, grant.currency), particulars, bank_account_id)
    grant.paid_entry_id = post_entry(session, draft).id
    grant.status = GrantStatus.PAID
    session.flush()
    return grant


def reject_grant(session: Session, organisation_id: int, grant_id: int) -> Grant:
    """Rejects (or withdraws) a grant still awaiting approval; nothing was posted for it."""
    grant = _grant_to_step(session, organisation_id, grant_id).row
    if grant.status != GrantStatus.REQUESTED:
        raise InvalidState(f"grant {grant_id} is {grant.status}; only a requested grant is rejected", field="grant_id")
    grant.status, grant.decided_at = GrantStatus.REJECTED, utc_now()
    session.flush()
    return grant
