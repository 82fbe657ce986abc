"""Gifts recorded by fund managers (bank transfer, cheque, cash, or in kind) and gifts paid online (recorded by
``ledger.payments.gifts`` once the processor says they are paid, with the processor's fee).

Each is a row describing the gift plus the entry its recipe posts, in one transaction; the row names the
entry, and a composite key ties the row's date to the entry's. A retry with the same idempotency key finds
the entry already posted and answers with the row that recorded it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger.books.charts import load_chart
from ledger.books.entries import post_entry
from ledger.books.organisations import posting_terms
from ledger.core.chart import Chart
from ledger.core.drafts import EntryDraft
from ledger.core.errors import CurrencyMismatch, InvalidInput, InvalidState
from ledger.core.money import Money
from ledger.core.recipes import Particulars, in_kind_donation, offline_donation, online_donation
from ledger.core.values import one_of
from ledger.core.vocabulary import DonationChannel
from ledger.db.listing import Page, get_owned, keyset_page
from ledger.db.models import Donation, Refund
from ledger.giving.donors import get_donor
from ledger.giving.observers import DONATION_RECORDED, notify

_INSERT_DONATION = insert(Donation).returning(Donation.id)  # built once: the API's hottest write


@dataclass(frozen=True, slots=True)
class GiftRecord:
    """A gift as a fund manager writes it down. For in-kind gifts ``amount_minor`` is the valuation, and
    ``in_kind_description`` and ``valuation_basis`` say what was given and how it was valued. ``account_id``:
    the bank or cash account it went into, when not the role's default."""

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
    account_id: int | None = None
    fee_minor: int = 0  # online: the processor's fee, a fundraising cost out of the gross
    goods_value_minor: int = 0  # the good-faith value of goods or services the donor received in return


@dataclass(frozen=True, slots=True)
class DonationFilter:
    """Which gifts a list shows: ``fund_ids`` None for every fund; the rest None for no condition."""

    fund_ids: frozenset[int] | None = None
    donor_id: int | None = None
    channel: str | None = None
    received_from: dt.date | None = None
    received_to: dt.date | None = None


def record_donation(session: Session, organisation_id: int, gift: GiftRecord, *, idempotency_key: str,
                    recorded_by: str) -> Donation:
    """Posts the gift's entry and records the gift; a retry with the same key answers with the first record."""
    terms = posting_terms(session, organisation_id, gift.fund_id)
    amount = Money.positive(gift.amount_minor, gift.currency)
    if amount.currency != terms.currency:
        raise CurrencyMismatch(f"the fund keeps {terms.currency}, not {amount.currency}", field="currency")
    _check_channel(gift)
    if isinstance(gift.goods_value_minor, bool) or not isinstance(gift.goods_value_minor, int) or \
            not 0 <= gift.goods_value_minor <= amount.amount_minor:
        raise InvalidInput("must be from 0 to the gift's amount, in minor units", field="goods_value_minor")
    if gift.donor_id is not None:
        get_donor(session, organisation_id, gift.donor_id)
    draft = _gift_entry(load_chart(session, organisation_id, terms.chart_version), gift, amount,
                        Particulars(gift.received_on, idempotency_key, recorded_by,
                                    gift.description or f"{gift.channel} gift {gift.reference}".strip()))
    posted = post_entry(session, draft, date_field="received_on")
    if posted.replayed:
        return record_of_entry(session, Donation, posted.id)
    values = dict(
        organisation_id=organisation_id, fund_id=gift.fund_id, donor_id=gift.donor_id, channel=gift.channel,
        amount_minor=amount.amount_minor, currency=amount.currency, received_on=gift.received_on,
        reference=gift.reference, description=draft.description, in_kind_description=gift.in_kind_description,
        valuation_basis=gift.valuation_basis, refunded_minor=0, goods_value_minor=gift.goods_value_minor,
        entry_id=posted.id,
        created_at=posted.posted_at, created_by=recorded_by)
    # A plain INSERT … RETURNING rather than the ORM's unit of work: this is the API's hottest write.
    donation_id = session.connection().execute(_INSERT_DONATION, values).scalar_one()
    donation = Donation(id=donation_id, **values)  # describes the row just written; not attached to the session
    notify(session, DONATION_RECORDED, donation)
    return donation


def _check_channel(gift: GiftRecord) -> None:
    """An in-kind gift says what was given and how it was valued, and goes to no account of money; only an online
    gift carries a fee."""
    if one_of(gift.channel, DonationChannel, "channel") != DonationChannel.ONLINE and gift.fee_minor:
        raise InvalidInput("only a gift paid online carries a processor's fee", field="fee_minor")
    if gift.channel != DonationChannel.IN_KIND:
        return
    for name in ("in_kind_description", "valuation_basis"):
        if not getattr(gift, name).strip():
            raise InvalidInput("is required for an in-kind gift", field=name)
    if gift.account_id is not None:
        raise InvalidInput("an in-kind gift goes to inventory or costs, not to an account of money",
                           field="account_id")


def _gift_entry(chart: Chart, gift: GiftRecord, amount: Money, particulars: Particulars) -> EntryDraft:
    if gift.channel == DonationChannel.IN_KIND:
        return in_kind_donation(chart, gift.fund_id, amount, particulars, gift.consumed_at_once)
    if gift.channel == DonationChannel.ONLINE:
        fee = Money(gift.fee_minor, amount.currency)
        return online_donation(chart, gift.fund_id, amount, fee, particulars, gift.account_id)
    return offline_donation(chart, gift.fund_id, amount, gift.channel, particulars, gift.account_id)


def record_of_entry(session: Session, model, entry_id: int):
    """The record (a gift, a refund) that an entry posted under a replayed key belongs to."""
    row = session.scalars(select(model).where(model.entry_id == entry_id)).first()
    if row is None:  # the key was first used for an entry of another kind
        raise InvalidState("this idempotency key already recorded something else", field="Idempotency-Key")
    return row


def get_donation(session: Session, organisation_id: int, donation_id: int) -> Donation:
    return get_owned(session, Donation, organisation_id, donation_id, "donation")


def list_donations(session: Session, organisation_id: int, which: DonationFilter, *, after: int | None,
                   limit: int) -> Page:
    query = select(Donation).where(Donation.organisation_id == organisation_id)
    if which.fund_ids is not None:
        query = query.where(Donation.fund_id.in_(sorted(which.fund_ids)))
    for value, condition in ((which.donor_id, lambda: Donation.donor_id == which.donor_id),
                             (which.channel, lambda: Donation.channel == which.channel),
                             (which.received_from, lambda: Donation.received_on >= which.received_from),
                             (which.received_to, lambda: Donation.received_on <= which.received_to)):
        if value is not None:
            query = query.where(condition())
    return keyset_page(session, query, Donation.id, after, limit)


def refunds_of(session: Session, donation: Donation) -> list[Refund]:
    """The gift's refunds, oldest first, those cancelled included."""
    return list(session.scalars(select(Refund).where(Refund.donation_id == donation.id).order_by(Refund.id)))
