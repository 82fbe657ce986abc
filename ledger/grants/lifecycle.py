"""Grants: money leaving a fund for a payee, in three steps with separation of duties.

requested → approved → (partly_paid →) paid, or requested → rejected; an approved or partly paid grant may be
cancelled, which posts its unpaid part back (``recipes.grant_cancelled``). The person who asked can neither
approve nor pay; above the organisation's threshold two different people must approve. Approval posts the cost
and the amount owed (``recipes.grant_approved``), each payment money leaving the bank (``recipes.grant_paid``),
never past the approved amount. The database keeps the same rules: an approval or payment row cannot name the
requester, an approver cannot approve twice, and what is paid and cancelled never passes the amount.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry
from ledger.books.organisations import get_fund, get_organisation
from ledger.core.errors import CurrencyMismatch, FundClosed, InvalidInput, InvalidState, SeparationOfDuties
from ledger.core.money import Money
from ledger.core.recipes import Particulars, grant_approved, grant_cancelled, grant_paid
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import FundStatus, GrantCategory, GrantStatus, PayeeKind
from ledger.db.engine import insert_unless_taken
from ledger.db.listing import OwnedRow, Page, get_owned, get_owned_with_chart, keyset_page
from ledger.db.models import Entry, Grant, GrantApproval, GrantPayment
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
    payee_kind: str = PayeeKind.ORGANISATION  # a person's name is masked on the public pages


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
                  payee_kind=one_of(request.payee_kind, PayeeKind, "payee_kind"),
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


UNPAID = (GrantStatus.APPROVED, GrantStatus.PARTLY_PAID)  # the statuses in which money is still owed


def pay_grant(session: Session, organisation_id: int, grant_id: int, *, paid_on: dt.date, idempotency_key: str,
              recorded_by: str, paid_by_user_id: int, amount_minor: int | None = None,
              bank_account_id: int | None = None) -> Grant:
    """Pays an approved grant, all that is still owed or ``amount_minor`` of it, out of the fund's bank account
    (the role's default unless named). Whoever requested the grant cannot pay it."""
    grant, chart_version = _grant_to_step(session, organisation_id, grant_id)
    if grant.status not in UNPAID:
        raise InvalidState(f"grant {grant_id} is {grant.status}; only an approved grant is paid", field="grant_id")
    if paid_by_user_id == grant.requested_by_user_id:
        raise SeparationOfDuties("whoever requested a grant cannot pay it", field="grant_id")
    _not_before_earlier_steps(session, grant, paid_on, "a payment")
    owed = grant.amount_minor - grant.paid_minor
    amount = Money.positive(owed if amount_minor is None else amount_minor, grant.currency)
    if amount.amount_minor > owed:
        raise InvalidInput(f"at most {owed} minor units of this grant remain to pay", field="amount_minor")
    particulars = Particulars(paid_on, idempotency_key, recorded_by, f"grant {grant.id} paid to {grant.payee}"[:500])
    draft = grant_paid(load_chart(session, organisation_id, chart_version), grant.fund_id, amount, particulars,
                       bank_account_id)
    posted = post_entry(session, draft)
    if not posted.replayed:
        session.add(GrantPayment(organisation_id=organisation_id, grant_id=grant.id,
                                 requested_by_user_id=grant.requested_by_user_id, amount_minor=amount.amount_minor,
                                 paid_on=paid_on, entry_id=posted.id, paid_by_user_id=paid_by_user_id,
                                 created_at=posted.posted_at))
        grant.paid_minor += amount.amount_minor
        grant.status = GrantStatus.PAID if grant.paid_minor == grant.amount_minor else GrantStatus.PARTLY_PAID
    session.flush()
    return grant


def cancel_grant(session: Session, organisation_id: int, grant_id: int, *, cancelled_on: dt.date, reason: str,
                 idempotency_key: str, recorded_by: str, cancelled_by_user_id: int) -> Grant:
    """Cancels what is still owed of an approved or partly paid grant: the unpaid part is posted back to the fund
    (no longer owed, no longer a cost). What was paid stays paid."""
    grant, chart_version = _grant_to_step(session, organisation_id, grant_id)
    if grant.status not in UNPAID:
        raise InvalidState(f"grant {grant_id} is {grant.status}; only an approved grant not wholly paid is cancelled",
                           field="grant_id")
    _not_before_earlier_steps(session, grant, cancelled_on, "a cancellation")
    unpaid = Money(grant.amount_minor - grant.paid_minor, grant.currency)
    reason = required_text(reason, "reason", 500)
    draft = grant_cancelled(load_chart(session, organisation_id, chart_version), grant.fund_id, unpaid,
                            grant.category, Particulars(cancelled_on, idempotency_key, recorded_by,
                                                        f"grant {grant.id} cancelled: {reason}"[:500]))
    posted = post_entry(session, draft)
    grant.cancelled_entry_id, grant.cancelled_minor = posted.id, unpaid.amount_minor
    grant.cancelled_at, grant.cancelled_by_user_id, grant.cancel_reason = utc_now(), cancelled_by_user_id, reason
    grant.status = GrantStatus.CANCELLED
    session.flush()
    return grant


def _not_before_earlier_steps(session: Session, grant: Grant, day: dt.date, what: str) -> None:
    """A grant's payment or cancellation is dated on or after its approval and its payments so far."""
    earlier = session.scalar(select(func.max(Entry.effective_date)).where(or_(
        Entry.id == grant.approved_entry_id,
        Entry.id.in_(select(GrantPayment.entry_id).where(GrantPayment.grant_id == grant.id)))))
    if earlier is not None and day < earlier:
        raise InvalidInput(f"{what} cannot precede the grant's approval or payments, the last on {earlier}",
                           field="effective_date")


def payments_of(session: Session, grant_ids: list[int]) -> dict[int, list[GrantPayment]]:
    """Each grant's payments, in the order they were made: one query for a whole page of grants."""
    payments: dict[int, list[GrantPayment]] = {grant_id: [] for grant_id in grant_ids}
    for payment in session.scalars(select(GrantPayment).where(GrantPayment.grant_id.in_(grant_ids))
                                   .order_by(GrantPayment.id)):
        payments[payment.grant_id].append(payment)
    return payments


def reject_grant(session: Session, organisation_id: int, grant_id: int) -> Grant:
    """Rejects (or withdraws) a grant still awaiting approval; nothing was posted for it."""
    grant = _grant_to_step(session, organisation_id, grant_id).row
    if grant.status != GrantStatus.REQUESTED:
        raise InvalidState(f"grant {grant_id} is {grant.status}; only a requested grant is rejected", field="grant_id")
    grant.status, grant.decided_at = GrantStatus.REJECTED, utc_now()
    session.flush()
    return grant
