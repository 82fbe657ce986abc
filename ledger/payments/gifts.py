"""Gifts given on a fund's donation page: started (pending) when the donor sends the form, recorded as a donation
only when the channel that takes the payment says it is paid, and then with the processor's fee.

The page shows what anyone may know of the fund (``donation_page``). ``start_gift`` judges what the donor filled
in (an amount within the fund's bounds, a name, an email address) and records the gift as pending. ``gift_paid``
turns it into a donation, exactly once however often a channel says so: the donor found (by email) or recorded,
the gift posted by the online recipe (the gross to revenue through the channel's clearing account, the fee a
fundraising cost), in one transaction with the gift's new status. A payment that differs from what was asked is
set aside for review and posts nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.balances import balance
from ledger.books.charts import load_chart
from ledger.books.organisations import get_organisation
from ledger.core.chart import Role
from ledger.core.errors import AmountInvalid, InvalidInput, InvalidState, NotFound
from ledger.core.money import Money, currency_exponent
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import DonationChannel, DonorKind, FundStatus, GiftStatus, PaymentChannelName
from ledger.db.engine import insert_unless_taken
from ledger.db.listing import Page, get_owned, keyset_page
from ledger.db.models import Donor, Fund, OnlineGift, Organisation
from ledger.db.types import utc_now
from ledger.giving.donations import GiftRecord, record_donation
from ledger.giving.donors import Contact, create_donor

PRESET_MAJOR_UNITS = (50, 100, 200, 500)  # the amounts a page offers first, where the fund's bounds allow them
MONTHLY_CHANNELS = frozenset({PaymentChannelName.STRIPE})  # the channels that take a gift every month
OPTIONAL_LIMITS = {"donor_address": 500, "donor_tax_id": 40, "dedication": 500}


@dataclass(frozen=True, slots=True)
class DonationPage:
    """What a fund's donation page shows: its organisation, the fund, and the preset amounts (minor units)."""

    organisation: Organisation
    fund: Fund
    presets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GiftForm:
    """What the donor filled in. ``amount_minor``: in minor units of the fund's currency."""

    amount_minor: int
    donor_name: str
    donor_email: str
    donor_address: str = ""
    donor_tax_id: str = ""
    name_public: bool = False
    dedication: str = ""
    language: str = "zh-CN"
    monthly: bool = False  # every month until the donor cancels (a subscription at the processor)


@dataclass(frozen=True, slots=True)
class Payment:
    """What a channel says was paid for a gift: its own id for the payment, the amount and currency, the fee it
    kept (from its own records, never computed here), and the day the money was received."""

    payment_id: str
    amount_minor: int
    currency: str
    fee_minor: int
    paid_on: dt.date
    problem: str = ""  # what the channel itself found wrong (the gift is then set aside for review)


def donation_page(session: Session, organisation_id: int, fund_code: str) -> DonationPage:
    """The page of a fund that takes gifts; NotFound for a fund that is not there, or closed."""
    organisation = get_organisation(session, organisation_id)
    fund = session.scalars(select(Fund).where(Fund.organisation_id == organisation_id, Fund.code == fund_code)).first()
    if fund is None or fund.status != FundStatus.OPEN:
        raise NotFound(f"fund {fund_code} takes no gifts here", field="fund")
    scale = 10 ** currency_exponent(fund.currency)
    presets = tuple(units * scale for units in PRESET_MAJOR_UNITS
                    if fund.giving_min_minor <= units * scale <= fund.giving_max_minor)
    return DonationPage(organisation, fund, presets)


def start_gift(session: Session, page: DonationPage, form: GiftForm, channel: str) -> OnlineGift:
    """Records the gift the form describes, pending its payment; a refusal names the field and writes nothing."""
    fund = page.fund
    _check_amount(form.amount_minor, fund)
    name = required_text(form.donor_name, "donor_name", 200)
    email = Contact(email=form.donor_email.strip() or None).checked()["email"]
    if email is None:
        raise InvalidInput("is required: the receipt goes there", field="donor_email")
    for field, limit in OPTIONAL_LIMITS.items():
        if len(getattr(form, field)) > limit:
            raise InvalidInput(f"must be at most {limit} characters", field=field)
    now = utc_now()
    gift = OnlineGift(
        organisation_id=fund.organisation_id, fund_id=fund.id, currency=fund.currency, amount_minor=form.amount_minor,
        donor_name=name, donor_email=email, donor_address=form.donor_address.strip(),
        donor_tax_id=form.donor_tax_id.strip(), name_public=form.name_public is True,
        dedication=form.dedication.strip(), language=form.language,
        channel=one_of(channel, PaymentChannelName, "channel"), status=GiftStatus.PENDING,
        token=secrets.token_urlsafe(24), review_reason="", created_at=now, updated_at=now,
        monthly=form.monthly is True)
    if gift.monthly and gift.channel not in MONTHLY_CHANNELS:
        raise InvalidInput(f"the {gift.channel} channel takes one-off gifts only", field="monthly")
    session.add(gift)
    session.flush()
    return gift


def _check_amount(amount_minor: int, fund: Fund) -> None:
    low, high = (Money(bound, fund.currency) for bound in (fund.giving_min_minor, fund.giving_max_minor))
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or \
            not low.amount_minor <= amount_minor <= high.amount_minor:
        raise AmountInvalid(f"must be from {low} to {high}", field="amount", minimum_minor=low.amount_minor,
                            maximum_minor=high.amount_minor)


def gift_by_token(session: Session, token: str, *, for_update: bool = False) -> OnlineGift:
    query = select(OnlineGift).where(OnlineGift.token == token)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    gift = session.scalars(query).first()
    if gift is None:
        raise NotFound("no such gift", field="gift")
    return gift


def gift_paid(session: Session, token: str, payment: Payment, recorded_by: str) -> OnlineGift:
    """The gift, recorded as a donation with its fee if it was still pending (the gift's row is locked first, so
    two reports of the same payment record it once); a gift already decided is answered as it is."""
    gift = gift_by_token(session, token, for_update=True)
    if gift.status != GiftStatus.PENDING:
        return gift
    problem = _payment_problem(gift, payment)
    if problem:
        return _settle(gift, GiftStatus.REVIEW, payment, review_reason=problem)
    donation = record_donation(session, gift.organisation_id, GiftRecord(
        fund_id=gift.fund_id, amount_minor=payment.amount_minor, currency=payment.currency,
        channel=DonationChannel.ONLINE, received_on=payment.paid_on, donor_id=_donor_of(session, gift).id,
        reference=payment.payment_id, description=_description(gift), fee_minor=payment.fee_minor),
        idempotency_key=f"online-gift-{gift.id}", recorded_by=recorded_by)
    _settle(gift, GiftStatus.SUCCEEDED, payment, donation_id=donation.id)
    session.flush()
    return gift


def instalment(session: Session, plan: OnlineGift, invoice_id: str) -> OnlineGift:
    """The gift that a later month's invoice of a monthly plan pays: created pending (from the plan's form) the
    first time the invoice is named, and the same gift every time after, however many report it at once."""
    now = utc_now()
    copied = {column: getattr(plan, column) for column in (
        "organisation_id", "fund_id", "currency", "amount_minor", "donor_name", "donor_email", "donor_address",
        "donor_tax_id", "name_public", "dedication", "language", "channel", "subscription_id")}
    insert_unless_taken(session, OnlineGift, {
        **copied, "status": GiftStatus.PENDING, "token": secrets.token_urlsafe(24), "review_reason": "",
        "created_at": now, "updated_at": now, "monthly": True, "plan_id": plan.id, "invoice_id": invoice_id},
        ("invoice_id",))
    return session.scalars(select(OnlineGift).where(OnlineGift.invoice_id == invoice_id)).one()


def monthly_cancelled(session: Session, token: str) -> OnlineGift:
    """The monthly plan, marked cancelled (once: the first report's time is kept); its payments stay recorded."""
    plan = gift_by_token(session, token, for_update=True)
    if not plan.monthly or plan.plan_id is not None:
        raise InvalidState("this gift is not a monthly plan", field="gift")
    if plan.cancelled_at is None:
        plan.cancelled_at = plan.updated_at = utc_now()
        session.flush()
    return plan


def gift_ended(session: Session, token: str, status: str) -> OnlineGift:
    """A pending gift whose payment failed, or that the donor left: nothing was paid, nothing is posted."""
    if status not in (GiftStatus.FAILED, GiftStatus.EXPIRED):
        raise InvalidInput("a gift ends failed or expired", field="status")
    gift = gift_by_token(session, token, for_update=True)
    if gift.status == GiftStatus.PENDING:
        gift.status = status
        gift.updated_at = utc_now()
        session.flush()
    return gift


def _payment_problem(gift: OnlineGift, payment: Payment) -> str:
    if payment.problem:
        return payment.problem
    asked, paid = Money(gift.amount_minor, gift.currency), Money(payment.amount_minor, payment.currency.upper())
    if paid != asked:
        return f"paid {paid}, asked {asked}"
    if not 0 <= payment.fee_minor <= payment.amount_minor:
        return f"the processor reports a fee of {payment.fee_minor} minor units on {paid}"
    return ""


def _settle(gift: OnlineGift, status: str, payment: Payment, *, donation_id: int | None = None,
            review_reason: str = "") -> OnlineGift:
    gift.status, gift.payment_id, gift.fee_minor = status, payment.payment_id, payment.fee_minor
    gift.paid_minor, gift.paid_currency, gift.paid_on = (payment.amount_minor, payment.currency.upper(),
                                                         payment.paid_on)
    gift.donation_id, gift.review_reason, gift.updated_at = donation_id, review_reason[:500], utc_now()
    return gift


def _donor_of(session: Session, gift: OnlineGift) -> Donor:
    """The organisation's donor with the gift's email address (its earliest), or a new one from the form."""
    donor = session.scalars(select(Donor).where(Donor.organisation_id == gift.organisation_id,
                                                Donor.email == gift.donor_email).order_by(Donor.id)).first()
    if donor is not None:
        return donor
    return create_donor(session, gift.organisation_id, kind=DonorKind.INDIVIDUAL, name=gift.donor_name,
                        created_by="donation page", public_name_consent=gift.name_public,
                        contact=Contact(email=gift.donor_email, address=gift.donor_address or None,
                                        tax_id=gift.donor_tax_id or None))


def _description(gift: OnlineGift) -> str:
    text = "online gift"
    return f"{text}: {gift.dedication}"[:500] if gift.dedication else text


def gifts_received(session: Session, fund: Fund) -> Money:
    """What the fund has received in gifts, net of refunds: its donation revenue, read in O(1)."""
    totals = balance(session, load_chart(session, fund.organisation_id).account(Role.DONATION_REVENUE), fund.id,
                     fund.currency)
    return Money(totals.credits_minor - totals.debits_minor, fund.currency)


@dataclass(frozen=True, slots=True)
class GiftFilter:
    """Which online gifts a list shows: ``fund_ids`` None for every fund; ``status`` None for any."""

    fund_ids: frozenset[int] | None = None
    status: str | None = None


def list_gifts(session: Session, organisation_id: int, which: GiftFilter, *, after: int | None,
               limit: int) -> Page:
    query = select(OnlineGift).where(OnlineGift.organisation_id == organisation_id)
    if which.fund_ids is not None:
        query = query.where(OnlineGift.fund_id.in_(which.fund_ids))
    if which.status is not None:
        query = query.where(OnlineGift.status == one_of(which.status, GiftStatus, "status"))
    return keyset_page(session, query, OnlineGift.id, after, limit)


def get_gift(session: Session, organisation_id: int, gift_id: int) -> OnlineGift:
    return get_owned(session, OnlineGift, organisation_id, gift_id, "gift")


def resolve_review(session: Session, organisation_id: int, gift_id: int, *, accept: bool, note: str,
                   resolved_by: str) -> OnlineGift:
    """A manager's decision on a gift set aside for review. Accepted: recorded as a donation of what was paid
    (which must be in the fund's currency, with a fee within it); rejected: failed, nothing posted (money that
    arrived is to be refunded through the channel). The note and who decided are kept with the reason."""
    gift = get_gift(session, organisation_id, gift_id)
    gift = gift_by_token(session, gift.token, for_update=True)
    if gift.status != GiftStatus.REVIEW:
        raise InvalidState(f"the gift is {gift.status}, not set aside for review", field="gift_id")
    note = required_text(note, "note", 300)
    decided = f"{gift.review_reason}; {'accepted' if accept else 'rejected'} by {resolved_by}: {note}"[:500]
    if not accept:
        gift.status, gift.review_reason, gift.updated_at = GiftStatus.FAILED, decided, utc_now()
        session.flush()
        return gift
    if gift.paid_currency != gift.currency or not gift.paid_minor or not 0 <= (gift.fee_minor or 0) <= \
            gift.paid_minor:
        raise InvalidState(f"what was paid ({gift.paid_minor} {gift.paid_currency}, fee {gift.fee_minor}) cannot "
                           f"be recorded in the fund's {gift.currency}", field="gift_id")
    gift.status, gift.amount_minor = GiftStatus.PENDING, gift.paid_minor  # the gift is what was paid
    paid = gift_paid(session, gift.token, Payment(gift.payment_id or f"review-{gift.id}", gift.paid_minor,
                                                  gift.currency, gift.fee_minor or 0, gift.paid_on), resolved_by)
    paid.review_reason = decided
    session.flush()
    return paid
