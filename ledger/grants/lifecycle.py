"""Grants: money leaving a fund for a payee, in three steps with separation of duties.

requested → approved → paid, or requested → rejected. The person who asked cannot approve; above the
organisation's threshold two different people must approve. Approval posts the cost and the amount owed
(``recipes.grant_approved``), payment the money leaving the bank (``recipes.grant_paid``). The database keeps
the same rules: an approval row cannot name the requester, nor the same approver twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ledger.books.entries import post_entry
from ledger.books.organisations import get_fund, get_organisation, load_chart
from ledger.core.errors import FundClosed, InvalidInput, InvalidState, NotFound, SeparationOfDuties
from ledger.core.money import Money, check_amount_minor
from ledger.core.recipes import GRANT_CATEGORIES, Particulars, grant_approved, grant_paid
from ledger.db.models import Grant, GrantApproval


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def request_grant(session: Session, organisation_id: int, *, fund_id: int, amount_minor: int, payee: str,
                  purpose: str, category: str, requested_by_user_id: int) -> Grant:
    organisation = get_organisation(session, organisation_id)
    fund = get_fund(session, organisation_id, fund_id)
    if fund.status != "open":
        raise FundClosed(f"fund {fund_id} is closed", field="fund_id")
    check_amount_minor(amount_minor)
    if category not in GRANT_CATEGORIES:
        raise InvalidInput(f"must be one of {', '.join(GRANT_CATEGORIES)}", field="category")
    for name, value, limit in (("payee", payee, 200), ("purpose", purpose, 500)):
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise InvalidInput(f"is required, at most {limit} characters", field=name)
    threshold = organisation.dual_approval_threshold_minor
    grant = Grant(organisation_id=organisation_id, fund_id=fund.id, currency=fund.currency,
                  amount_minor=amount_minor, payee=payee.strip(), purpose=purpose.strip(), category=category,
                  status="requested", approvals_required=2 if threshold is not None and amount_minor > threshold else 1,
                  requested_by_user_id=requested_by_user_id, requested_at=_now())
    session.add(grant)
    session.flush()
    return grant


def get_grant(session: Session, organisation_id: int, grant_id: int, *, for_update: bool = False) -> Grant:
    """The grant; ``for_update`` locks its row until the transaction ends (PostgreSQL) and re-reads it even
    if the session holds it already, so two approvals of one grant are judged one after the other."""
    query = select(Grant).where(Grant.id == grant_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    grant = session.scalars(query).first()
    if grant is None or grant.organisation_id != organisation_id:
        raise NotFound(f"grant {grant_id} does not exist", field="grant_id")
    return grant


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
    grant = get_grant(session, organisation_id, grant_id, for_update=True)
    if grant.status != "requested":
        raise InvalidState(f"grant {grant_id} is {grant.status}, not awaiting approval", field="grant_id")
    if approver_user_id == grant.requested_by_user_id:
        raise SeparationOfDuties("whoever requested a grant cannot approve it", field="grant_id")
    if approver_user_id in approvers_of(session, [grant_id])[grant_id]:
        raise SeparationOfDuties("this grant needs a second, different approver", field="grant_id")
    session.execute(insert(GrantApproval).values(grant_id=grant_id, user_id=approver_user_id,
                                                 requested_by_user_id=grant.requested_by_user_id,
                                                 approved_at=_now()))
    count = session.scalar(select(func.count()).where(GrantApproval.grant_id == grant_id))
    if count >= grant.approvals_required:
        draft = grant_approved(load_chart(session, organisation_id), grant.fund_id,
                               Money(grant.amount_minor, grant.currency), grant.category,
                               Particulars(effective_date, idempotency_key, recorded_by,
                                           f"grant {grant.id} to {grant.payee}: {grant.purpose}"[:500]))
        grant.approved_entry_id = post_entry(session, draft).id
        grant.status, grant.decided_at = "approved", _now()
    session.flush()
    return grant


def pay_grant(session: Session, organisation_id: int, grant_id: int, *, paid_on: dt.date, idempotency_key: str,
              recorded_by: str) -> Grant:
    grant = get_grant(session, organisation_id, grant_id, for_update=True)
    if grant.status != "approved":
        raise InvalidState(f"grant {grant_id} is {grant.status}; only an approved grant is paid", field="grant_id")
    particulars = Particulars(paid_on, idempotency_key, recorded_by, f"grant {grant.id} paid to {grant.payee}"[:500])
    draft = grant_paid(load_chart(session, organisation_id), grant.fund_id,
                       Money(grant.amount_minor, grant.currency), particulars)
    grant.paid_entry_id = post_entry(session, draft).id
    grant.status = "paid"
    session.flush()
    return grant


def reject_grant(session: Session, organisation_id: int, grant_id: int) -> Grant:
    grant = get_grant(session, organisation_id, grant_id, for_update=True)
    if grant.status != "requested":
        raise InvalidState(f"grant {grant_id} is {grant.status}; only a requested grant is rejected", field="grant_id")
    grant.status, grant.decided_at = "rejected", _now()
    session.flush()
    return grant
