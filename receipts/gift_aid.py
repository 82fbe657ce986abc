"""Gift Aid (UK): a donor's declaration lets the charity claim basic-rate tax back on their gifts — 25p for every
£1. The declaration is recorded with the donor (its date, the day it takes effect from, which may be up to four
years back, and the day it was cancelled, if it was); a UK receipt states whether its gifts are covered.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput, InvalidState, NotFound
from ledger.db.listing import get_owned
from ledger.db.models import Donor
from ledger.db.types import utc_now
from receipts.models import GiftAidDeclaration, Receipt

YEARS_BACK = 4  # HMRC: a declaration may cover gifts of the four years before it


def declare(session: Session, organisation_id: int, donor_id: int, *, declared_on: dt.date,
            effective_from: dt.date | None, created_by: str) -> GiftAidDeclaration:
    get_owned(session, Donor, organisation_id, donor_id, "donor")
    effective_from = effective_from or declared_on
    if declared_on > utc_now().date() + dt.timedelta(days=1):
        raise InvalidInput("cannot be in the future", field="declared_on")
    if effective_from > declared_on:
        raise InvalidInput("a declaration covers gifts from a day on or before it was made", field="effective_from")
    if effective_from < declared_on.replace(year=declared_on.year - YEARS_BACK):
        raise InvalidInput(f"a declaration reaches back at most {YEARS_BACK} years", field="effective_from")
    declaration = GiftAidDeclaration(organisation_id=organisation_id, donor_id=donor_id, declared_on=declared_on,
                                     effective_from=effective_from, created_at=utc_now(), created_by=created_by)
    session.add(declaration)
    session.flush()
    return declaration


def cancel(session: Session, organisation_id: int, donor_id: int, declaration_id: int, *,
           cancelled_on: dt.date) -> GiftAidDeclaration:
    declaration = get_owned(session, GiftAidDeclaration, organisation_id, declaration_id, "declaration")
    if declaration.donor_id != donor_id:
        raise NotFound(f"declaration {declaration_id} of donor {donor_id} does not exist", field="declaration_id")
    if declaration.cancelled_on is not None:
        raise InvalidState(f"the declaration was cancelled on {declaration.cancelled_on}", field="declaration_id")
    if cancelled_on < declaration.effective_from:
        raise InvalidInput("a cancellation cannot precede the day the declaration took effect",
                           field="cancelled_on")
    declaration.cancelled_on = cancelled_on
    session.flush()
    return declaration


def declarations(session: Session, organisation_id: int, donor_id: int) -> list[GiftAidDeclaration]:
    get_owned(session, Donor, organisation_id, donor_id, "donor")
    return list(session.scalars(select(GiftAidDeclaration).where(
        GiftAidDeclaration.donor_id == donor_id).order_by(GiftAidDeclaration.id)))


def covering(session: Session, donor_id: int, first: dt.date, last: dt.date) -> GiftAidDeclaration | None:
    """The donor's declaration in force over every day from ``first`` to ``last``, if any."""
    return session.scalars(select(GiftAidDeclaration).where(
        GiftAidDeclaration.donor_id == donor_id, GiftAidDeclaration.effective_from <= first,
        or_(GiftAidDeclaration.cancelled_on.is_(None), GiftAidDeclaration.cancelled_on > last))
        .order_by(GiftAidDeclaration.declared_on)).first()


def gift_aid_statement(session: Session, receipt: Receipt) -> str:
    """What a UK receipt says of Gift Aid, in English (a UK receipt's language)."""
    found = covering(session, receipt.donor_id, receipt.period_start, receipt.period_end)
    if found is None:
        return "No Gift Aid declaration covers these gifts"
    return f"declared {found.declared_on.isoformat()}: the charity may claim 25p for every £1 of these gifts"
