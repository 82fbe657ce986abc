"""The demo's stand-in for a payment processor, used when no processor is configured (``make run`` with no
Stripe keys): the donor "pays" on a page of this site that says plainly it is a test, and no money moves.

It reports what a processor would: a payment id of its own and the fee kept. The fee is a flat 3 % (rounded half
up to the minor unit), a figure of the size card processors charge, so that the demo shows how a fee is booked: a
fundraising cost, the net left in the processor's clearing account until a payout.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ledger.core.vocabulary import GiftStatus, PaymentChannelName
from ledger.db.models import OnlineGift
from ledger.payments.gifts import Payment, gift_by_token, gift_ended, gift_paid

CHANNEL = PaymentChannelName.DEMO
FEE_BASIS_POINTS = 300
RECORDED_BY = "demo checkout (no money moved)"


def demo_fee(amount_minor: int) -> int:
    return (amount_minor * FEE_BASIS_POINTS + 5_000) // 10_000


def pay(session: Session, token: str, today: dt.date) -> OnlineGift:
    """The donor pressed pay on the demo's checkout: the gift is paid, with the demo's fee."""
    gift = gift_by_token(session, token)
    payment = Payment(f"demo_{gift.id}", gift.amount_minor, gift.currency, demo_fee(gift.amount_minor), today)
    return gift_paid(session, token, payment, RECORDED_BY)


def leave(session: Session, token: str) -> OnlineGift:
    """The donor left the demo's checkout without paying."""
    return gift_ended(session, token, GiftStatus.EXPIRED)
