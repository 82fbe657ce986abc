"""Refunds: money given back for a gift, the way it came, never more than the gift.

A refund is a row plus the entry its recipe posts, out of the very account the gift went into. The refunds of a
gift never pass its amount: checked here, by a conditional update that a concurrent refund cannot slip past, and
by a CHECK constraint.

A refund recorded by mistake is cancelled through its record (``cancel_refund``): its entry is reversed, the gift's
refunded total goes back down, and the record keeps who cancelled it, when and why. The entry of a refund is never
reversed on its own (``ledger.books.entries.reverse_entry`` refuses it), so the record and the books always agree.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import get_entry, post_entry
from ledger.core.errors import InvalidInput, InvalidState, NotFound
from ledger.core.money import Money
from ledger.core.recipes import Particulars, refund, reversal
from ledger.core.values import required_text
from ledger.core.vocabulary import DonationChannel
from ledger.db.listing import get_owned, get_owned_with_chart
from ledger.db.models import Donation, Posting, Refund
from ledger.db.types import utc_now
from ledger.giving.donations import record_of_entry
from ledger.giving.observers import REFUND_CANCELLED, REFUND_RECORDED, notify


def refund_donation(session: Session, organisation_id: int, donation_id: int, *, amount_minor: int,
                    refunded_on: dt.date, reason: str, idempotency_key: str, recorded_by: str) -> Refund:
    """Gives back part or all of a gift the way it came."""
    donation, chart_version = get_owned_with_chart(session, Donation, organisation_id, donation_id, "donation")
    if donation.channel == DonationChannel.IN_KIND:
        raise InvalidState("an in-kind gift is not refunded in money", field="donation_id")
    amount = Money.positive(amount_minor, donation.currency)
    if refunded_on < donation.received_on:
        raise InvalidInput(f"a refund cannot precede the gift, received on {donation.received_on}",
                           field="refunded_on")
    remaining = donation.amount_minor - donation.refunded_minor
    if amount.amount_minor > remaining:
        raise InvalidInput(f"at most {remaining} minor units of this gift remain to refund", field="amount_minor")
    # (A gift given online goes back through the processor, out of its clearing account.)
    source = "processor" if donation.channel == DonationChannel.ONLINE else donation.channel
    draft = refund(load_chart(session, organisation_id, chart_version), donation.fund_id, amount, source,
                   Particulars(refunded_on, idempotency_key, recorded_by,
                               reason or f"refund of donation {donation.id}"),
                   account_id=_account_received_in(session, donation))
    posted = post_entry(session, draft, date_field="refunded_on")
    if posted.replayed:
        return record_of_entry(session, Refund, posted.id)
    grown = session.execute(
        update(Donation).where(Donation.id == donation.id,
                               Donation.refunded_minor + amount.amount_minor <= Donation.amount_minor)
        .values(refunded_minor=Donation.refunded_minor + amount.amount_minor)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not grown:
        raise InvalidInput("refunds would pass the gift's amount", field="amount_minor")
    session.expire(donation)
    row = Refund(organisation_id=organisation_id, donation_id=donation.id, amount_minor=amount.amount_minor,
                 refunded_on=refunded_on, reason=draft.description, entry_id=posted.id,
                 created_at=posted.posted_at, created_by=recorded_by)
    session.add(row)
    session.flush()
    notify(session, REFUND_RECORDED, row)
    return row


def _account_received_in(session: Session, donation: Donation) -> int:
    """The bank or cash account the gift's entry debited: the refund goes out of it."""
    return session.scalar(select(Posting.debit_account_id).where(Posting.entry_id == donation.entry_id)
                          .order_by(Posting.id).limit(1))


def get_refund(session: Session, organisation_id: int, donation_id: int, refund_id: int) -> Refund:
    """A refund of this donation (NotFound for a refund of another gift or organisation)."""
    row = get_owned(session, Refund, organisation_id, refund_id, "refund")
    if row.donation_id != donation_id:
        raise NotFound(f"refund {refund_id} of donation {donation_id} does not exist", field="refund_id")
    return row


def cancel_refund(session: Session, organisation_id: int, donation_id: int, refund_id: int, *, cancelled_on: dt.date,
                  reason: str, idempotency_key: str, recorded_by: str) -> Refund:
    """Cancels a refund recorded by mistake: reverses its entry (the money is back where the gift left it) and
    lowers the gift's refunded total by the refund's amount."""
    row = get_refund(session, organisation_id, donation_id, refund_id)
    if row.cancelled_entry_id is not None:
        raise InvalidState(f"refund {refund_id} was already cancelled", field="refund_id")
    if cancelled_on < row.refunded_on:
        raise InvalidInput(f"a cancellation cannot precede the refund, made on {row.refunded_on}", field="cancelled_on")
    reason = required_text(reason, "reason", 500)
    particulars = Particulars(cancelled_on, idempotency_key, recorded_by,
                              f"refund {row.id} cancelled: {reason}"[:500])
    posted = post_entry(session, reversal(get_entry(session, organisation_id, row.entry_id), particulars,
                                          row.entry_id), date_field="cancelled_on")
    shrunk = session.execute(
        update(Refund).where(Refund.id == row.id, Refund.cancelled_entry_id.is_(None))
        .values(cancelled_entry_id=posted.id, cancelled_at=utc_now(), cancelled_by=recorded_by, cancel_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    if not shrunk:  # a concurrent cancellation got there first (its entry's key differs: the reversal is refused)
        raise InvalidState(f"refund {refund_id} was already cancelled", field="refund_id")
    session.execute(update(Donation).where(Donation.id == row.donation_id)
                    .values(refunded_minor=Donation.refunded_minor - row.amount_minor)
                    .execution_options(synchronize_session=False))
    session.expire_all()
    cancelled = get_refund(session, organisation_id, donation_id, refund_id)
    notify(session, REFUND_CANCELLED, cancelled)
    return cancelled
