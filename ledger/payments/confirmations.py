"""The donor's confirmation email, kept as state on the gift so that none is lost and none goes twice.

A gift recorded (succeeded) with no ``confirmed_at`` is owed its email. A sender claims one
(``claim_confirmation``: a conditional update of ``confirmation_claimed_at``, so two senders at once claim it
once), sends it, marks it sent (``confirmation_sent``), and gives the claim back if sending failed
(``release_confirmation``): the next round, after the next event or from ``flask mail send-pending``, tries again.
A claim whose sender died is taken back after ``STALE_CLAIM``. What the email says, and how it goes, is the web
layer's (``api.edge.mail``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ledger.core.vocabulary import GiftStatus
from ledger.db.models import OnlineGift
from ledger.db.types import utc_now

STALE_CLAIM = dt.timedelta(minutes=10)


def _owed():
    return (OnlineGift.status == GiftStatus.SUCCEEDED) & OnlineGift.confirmed_at.is_(None) & or_(
        OnlineGift.confirmation_claimed_at.is_(None), OnlineGift.confirmation_claimed_at < utc_now() - STALE_CLAIM)


def owed_confirmations(session: Session, limit: int = 100, *, after: int = 0) -> list[int]:
    """Gifts recorded whose donor has not been sent a confirmation yet, oldest first (ids above ``after``)."""
    return list(session.scalars(select(OnlineGift.id).where(_owed(), OnlineGift.id > after)
                                .order_by(OnlineGift.id).limit(limit)))


def claim_confirmation(session: Session, gift_id: int) -> OnlineGift | None:
    """The gift, its confirmation claimed by this sender; None when another sender claimed it first."""
    claimed = session.execute(update(OnlineGift).where(OnlineGift.id == gift_id, _owed())
                              .values(confirmation_claimed_at=utc_now())
                              .execution_options(synchronize_session=False)).rowcount
    return session.get(OnlineGift, gift_id, populate_existing=True) if claimed else None


def confirmation_sent(session: Session, gift_id: int) -> None:
    session.execute(update(OnlineGift).where(OnlineGift.id == gift_id).values(confirmed_at=utc_now())
                    .execution_options(synchronize_session=False))


def release_confirmation(session: Session, gift_id: int) -> None:
    """Sending failed: the confirmation is owed again."""
    session.execute(update(OnlineGift).where(OnlineGift.id == gift_id).values(confirmation_claimed_at=None)
                    .execution_options(synchronize_session=False))
