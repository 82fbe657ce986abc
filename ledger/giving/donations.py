"""Gifts recorded by fund managers (bank transfer, cheque, cash, in kind) and their refunds.

Each is a row describing the gift plus the entry its recipe posts, in one transaction; the row names the
entry, and a composite key ties the row's date to the entry's. A retry with the same idempotency key finds
the entry already posted and answers with the row that recorded it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ledger.books.entries import post_entry
from ledger.books.organisations import fund_currency, load_chart
from ledger.core.errors import CurrencyMismatch, InvalidInput, InvalidState, NotFound
from ledger.core.money import Money, check_amount_minor, check_currency
from ledger.core.recipes import Particulars, in_kind_donation, offline_donation, refund
from ledger.db.models import Donation, Refund
from ledger.giving.donors import get_donor

CHANNELS = ("bank", "cheque", "cash", "in_kind")
_INSERT_DONATION = insert(Donation).returning(Donation.id)  # built once: the API's hottest write


@dataclass(frozen=True, slots=True)
class GiftRecord:
    """A gift as a fund manager writes it down. For in-kind gifts ``amount_minor`` is the valuation, and
    ``in_kind_description`` and ``valuation_basis`` say what was given and how it was valued."""

    fund_id: int
    amount_minor: int
    currency: str
    channel: str
    received_on: dt.date
    donor_id: int | None = None
    reference: str = ""
    description: str = ""
    in_kind_description: str = ""
    valuation_basis: str = ""
    consumed_at_once: bool = False


def record_donation(session: Session, organisation_id: int, gift: GiftRecord, *, idempotency_key: str,
                    recorded_by: str) -> Donation:
    amount = _amount(gift.amount_minor, gift.currency, fund_currency(session, organisation_id, gift.fund_id))
    if gift.channel not in CHANNELS:
        raise InvalidInput(f"must be one of {', '.join(CHANNELS)}", field="channel")
    if gift.channel == "in_kind":
        for name in ("in_kind_description", "valuation_basis"):
            if not getattr(gift, name).strip():
                raise InvalidInput("is required for an in-kind gift", field=name)
    if gift.donor_id is not None:
        get_donor(session, organisation_id, gift.donor_id)
    chart = load_chart(session, organisation_id)
    particulars = Particulars(gift.received_on, idempotency_key, recorded_by,
                              gift.description or f"{gift.channel} gift {gift.reference}".strip())
    if gift.channel == "in_kind":
        draft = in_kind_donation(chart, gift.fund_id, amount, particulars, gift.consumed_at_once)
    else:
        draft = offline_donation(chart, gift.fund_id, amount, gift.channel, particulars)
    posted = post_entry(session, draft)
    if posted.replayed:
        return _by_entry(session, Donation, posted.id)
    values = dict(
        organisation_id=organisation_id, fund_id=gift.fund_id, donor_id=gift.donor_id, channel=gift.channel,
        amount_minor=amount.amount_minor, currency=amount.currency, received_on=gift.received_on,
        reference=gift.reference, description=draft.description, in_kind_description=gift.in_kind_description,
        valuation_basis=gift.valuation_basis, refunded_minor=0, entry_id=posted.id,
        created_at=posted.posted_at, created_by=recorded_by)
    # A plain INSERT … RETURNING rather than the ORM's unit of work: this is the API's hottest write.
    donation_id = session.connection().execute(_INSERT_DONATION, values).scalar_one()
    return Donation(id=donation_id, **values)  # describes the row just written; not attached to the session


def _amount(amount_minor: object, currency: object, fund_currency: str) -> Money:
    check_amount_minor(amount_minor)
    if check_currency(currency) != fund_currency:
        raise CurrencyMismatch(f"the fund keeps {fund_currency}, not {currency}", field="currency")
    return Money(amount_minor, fund_currency)  # type: ignore[arg-type]


def _by_entry(session: Session, model, entry_id: int):
    row = session.scalars(select(model).where(model.entry_id == entry_id)).first()
    if row is None:  # the key was first used for an entry of another kind
        raise InvalidState("this idempotency key already recorded something else", field="Idempotency-Key")
    return row


def get_donation(session: Session, organisation_id: int, donation_id: int) -> Donation:
    donation = session.get(Donation, donation_id)
    if donation is None or donation.organisation_id != organisation_id:
        raise NotFound(f"donation {donation_id} does not exist", field="donation_id")
    return donation


def refunds_of(session: Session, donation_id: int) -> list[Refund]:
    return list(session.scalars(select(Refund).where(Refund.donation_id == donation_id).order_by(Refund.id)))


def refund_donation(session: Session, organisation_id: int, donation_id: int, *, amount_minor: int,
                    refunded_on: dt.date, reason: str, idempotency_key: str, recorded_by: str) -> Refund:
    """Gives back part or all of a gift the way it came. The refunds of a gift never pass its amount: checked
    here, by a conditional update that a concurrent refund cannot slip past, and by a CHECK constraint."""
    donation = get_donation(session, organisation_id, donation_id)
    if donation.channel == "in_kind":
        raise InvalidState("an in-kind gift is not refunded in money", field="donation_id")
    check_amount_minor(amount_minor)
    if refunded_on < donation.received_on:
        raise InvalidInput(f"a refund cannot precede the gift, received on {donation.received_on}",
                           field="refunded_on")
    remaining = donation.amount_minor - donation.refunded_minor
    if amount_minor > remaining:
        raise InvalidInput(f"at most {remaining} minor units of this gift remain to refund", field="amount_minor")
    chart = load_chart(session, organisation_id)
    draft = refund(chart, donation.fund_id, Money(amount_minor, donation.currency), donation.channel,
                   Particulars(refunded_on, idempotency_key, recorded_by,
                               reason or f"refund of donation {donation.id}"))
    posted = post_entry(session, draft)
    if posted.replayed:
        return _by_entry(session, Refund, posted.id)
    grown = session.execute(
        update(Donation).where(Donation.id == donation.id,
                               Donation.refunded_minor + amount_minor <= Donation.amount_minor)
        .values(refunded_minor=Donation.refunded_minor + amount_minor)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not grown:
        raise InvalidInput("refunds would pass the gift's amount", field="amount_minor")
    session.expire(donation)
    row = Refund(organisation_id=organisation_id, donation_id=donation.id, amount_minor=amount_minor,
                 refunded_on=refunded_on, reason=draft.description, entry_id=posted.id,
                 created_at=posted.posted_at, created_by=recorded_by)
    session.add(row)
    session.flush()
    return row
