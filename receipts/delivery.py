"""Receipts sent to their donors by email, none lost and none sent twice.

Every receipt issued to a donor with an email address is owed a delivery (a ``receipt_deliveries`` row, written
with the receipt). A sender claims one (pending → sending, by a conditional update: two senders claim it once),
sends it, and marks it sent; a failure puts it back to pending with the error and the attempt counted, to be tried
again by the next round, after a pause that grows with the attempts. A claim whose sender died is taken back after
``STALE_CLAIM``. How the email is written and sent is the web layer's (``api.edge.receipt_mail``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ledger.db.types import utc_now
from receipts.models import DeliveryStatus, Receipt, ReceiptDelivery

STALE_CLAIM = dt.timedelta(minutes=10)
MAX_PAUSE = dt.timedelta(hours=6)


def delivery_of(receipt: Receipt, email: str | None) -> ReceiptDelivery | None:
    """The receipt's email, owed from now, if its donor has an address."""
    if not email:
        return None
    return ReceiptDelivery(receipt_id=receipt.id, email=email, status=DeliveryStatus.PENDING, attempts=0,
                           last_error="", due_at=utc_now())


def _due(due_by: dt.datetime):
    """Pending and due by ``due_by``, or claimed by a sender that has not finished for too long."""
    return or_((ReceiptDelivery.status == DeliveryStatus.PENDING) & (ReceiptDelivery.due_at <= due_by),
               (ReceiptDelivery.status == DeliveryStatus.SENDING) &
               (ReceiptDelivery.claimed_at < utc_now() - STALE_CLAIM))


def deliveries_due(session: Session, limit: int = 100, *, due_by: dt.datetime | None = None,
                   after: int = 0) -> list[int]:
    """Receipts whose email is due by ``due_by`` (now; later takes the failed ones before their pause is over),
    with ids above ``after``."""
    return list(session.scalars(select(ReceiptDelivery.receipt_id).where(
        _due(due_by or utc_now()), ReceiptDelivery.receipt_id > after)
        .order_by(ReceiptDelivery.receipt_id).limit(limit)))


def claim_delivery(session: Session, receipt_id: int, *,
                   due_by: dt.datetime | None = None) -> ReceiptDelivery | None:
    claimed = session.execute(update(ReceiptDelivery).where(
        ReceiptDelivery.receipt_id == receipt_id, _due(due_by or utc_now()))
        .values(status=DeliveryStatus.SENDING, claimed_at=utc_now(), attempts=ReceiptDelivery.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    return session.get(ReceiptDelivery, receipt_id, populate_existing=True) if claimed else None


def delivered(session: Session, receipt_id: int) -> None:
    session.execute(update(ReceiptDelivery).where(ReceiptDelivery.receipt_id == receipt_id)
                    .values(status=DeliveryStatus.SENT, sent_at=utc_now(), last_error="")
                    .execution_options(synchronize_session=False))


def skipped(session: Session, receipt_id: int) -> None:
    """The receipt was voided before its email went: it is not sent."""
    session.execute(update(ReceiptDelivery).where(ReceiptDelivery.receipt_id == receipt_id)
                    .values(status=DeliveryStatus.SKIPPED).execution_options(synchronize_session=False))


def not_delivered(session: Session, receipt_id: int, error: str) -> None:
    """Sending failed: pending again, after a pause of a minute doubled for each attempt (at most six hours)."""
    delivery = session.get(ReceiptDelivery, receipt_id, populate_existing=True)
    pause = min(dt.timedelta(minutes=2 ** max(delivery.attempts - 1, 0)), MAX_PAUSE)
    session.execute(update(ReceiptDelivery).where(ReceiptDelivery.receipt_id == receipt_id)
                    .values(status=DeliveryStatus.PENDING, due_at=utc_now() + pause, last_error=error[:500])
                    .execution_options(synchronize_session=False))
