"""The receipt register: settings, gap-free numbers, receipts issued, voided and replaced.

A receipt is numbered ``<prefix>-<year>-<sequence>`` (``CDCF-2026-000123``): the sequence comes from the
organisation's counter row for the year, incremented in the transaction that writes the receipt, so its row lock
orders concurrent issuers and a rolled-back issue gives its number back (no gaps, no repeats; a database sequence
would leave gaps). A receipt never changes (the database refuses it): a refund voids the receipts covering the
gift, in the refund's transaction, and issues a replacement for what is left of it; a manager may void one with a
reason, or replace one (the new receipt states the number it replaces).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput, InvalidState, NotFound
from ledger.core.values import one_of, required_text
from ledger.db.engine import insert_unless_taken
from ledger.db.listing import Page, get_owned, keyset_page
from ledger.db.models import Donation, Donor, Organisation, Refund
from ledger.db.types import utc_now
from receipts.delivery import delivery_of
from receipts.models import (
    Receipt,
    ReceiptCounter,
    ReceiptJurisdiction,
    ReceiptKind,
    ReceiptLanguage,
    ReceiptLine,
    ReceiptSettings,
    ReceiptTiming,
    ReceiptVoid,
)

JURISDICTION_OF_COUNTRY = {"CN": "CN", "US": "US", "CA": "CA", "GB": "UK"}
ISSUED = "receipts_issued"  # session.info: this transaction issued receipts (their emails are owed)
__all__ = ["ReceiptJurisdiction", "ReceiptLanguage", "ReceiptTiming"]  # (the API's vocabularies, from here)


def settings_of(session: Session, organisation_id: int) -> ReceiptSettings:
    """The organisation's receipt settings, or the defaults (not stored) until a manager sets them: prefix
    ``R<id>``, a receipt per gift, the organisation's country's rules, Chinese in China and English elsewhere."""
    found = session.get(ReceiptSettings, organisation_id)
    if found is not None:
        return found
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"organisation {organisation_id} does not exist", field="organisation_id")
    jurisdiction = JURISDICTION_OF_COUNTRY.get(organisation.jurisdiction, "CN")
    return ReceiptSettings(organisation_id=organisation_id, prefix=f"R{organisation_id}",
                           timing=ReceiptTiming.PER_DONATION, jurisdiction=jurisdiction, fiscal_year_start_month=1,
                           issuer_address="", signatory="",
                           language=ReceiptLanguage.ZH_CN if jurisdiction == "CN" else ReceiptLanguage.EN)


def set_settings(session: Session, organisation_id: int, *, prefix: str, timing: str, jurisdiction: str,
                 language: str, updated_by: str, fiscal_year_start_month: int = 1, issuer_address: str = "",
                 signatory: str = "") -> ReceiptSettings:
    prefix = required_text(prefix, "prefix", 20)
    if not prefix.replace("-", "").isalnum() or not prefix.isascii():
        raise InvalidInput("must be letters, digits and hyphens (it begins every receipt number)", field="prefix")
    taken = session.scalar(select(ReceiptSettings.organisation_id).where(
        ReceiptSettings.prefix == prefix, ReceiptSettings.organisation_id != organisation_id))
    if taken is not None or (re.fullmatch(r"R\d+", prefix) and prefix != f"R{organisation_id}"):
        # (R<id> is the default prefix of organisation <id>, which has no settings row until it sets them)
        raise InvalidInput("is another organisation's: a receipt number names one receipt", field="prefix")
    values = {"prefix": prefix, "timing": one_of(timing, ReceiptTiming, "timing"),
              "jurisdiction": one_of(jurisdiction, ReceiptJurisdiction, "jurisdiction"),
              "language": one_of(language, ReceiptLanguage, "language"), "updated_at": utc_now(),
              "updated_by": updated_by, "fiscal_year_start_month": _month(fiscal_year_start_month),
              "issuer_address": _optional_text(issuer_address, "issuer_address", 300),
              "signatory": _optional_text(signatory, "signatory", 200)}
    found = session.get(ReceiptSettings, organisation_id)
    if found is None:
        found = ReceiptSettings(organisation_id=organisation_id, **values)
        session.add(found)
    else:
        for name, value in values.items():
            setattr(found, name, value)
    session.flush()
    return found


def _month(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise InvalidInput("must be a month, 1 to 12", field="fiscal_year_start_month")
    return value


def _optional_text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise InvalidInput(f"must be text of at most {limit} characters", field=field)
    return value.strip()


def fiscal_year(settings: ReceiptSettings, year: int) -> tuple[dt.date, dt.date]:
    """The organisation's year named by the year it starts in: 2026 from 1 April 2026 to 31 March 2027, say."""
    start = dt.date(year, settings.fiscal_year_start_month, 1)
    following = dt.date(year + 1, settings.fiscal_year_start_month, 1)
    return start, following - dt.timedelta(days=1)


def lock_gifts(session: Session, donation_ids: list[int]) -> None:
    """Holds the gifts' rows until the transaction ends: a refund (which updates its gift) waits, and what is left
    of a gift to receipt stays what was counted."""
    session.execute(select(Donation.id).where(Donation.id.in_(donation_ids)).order_by(Donation.id)
                    .with_for_update())


def lock_series(session: Session, organisation_id: int, year: int) -> None:
    """Holds the organisation's series of the year until the transaction ends: issuers of the series wait."""
    insert_unless_taken(session, ReceiptCounter, {"organisation_id": organisation_id, "year": year,
                                                  "last_number": 0}, ("organisation_id", "year"))
    session.execute(select(ReceiptCounter.last_number).where(
        ReceiptCounter.organisation_id == organisation_id, ReceiptCounter.year == year).with_for_update())


def _next_sequence(session: Session, organisation_id: int, year: int, count: int = 1) -> int:
    """The first of ``count`` numbers taken from the series (one statement, whatever the count)."""
    insert_unless_taken(session, ReceiptCounter, {"organisation_id": organisation_id, "year": year,
                                                  "last_number": 0}, ("organisation_id", "year"))
    last = session.execute(update(ReceiptCounter).where(
        ReceiptCounter.organisation_id == organisation_id, ReceiptCounter.year == year)
        .values(last_number=ReceiptCounter.last_number + count).returning(ReceiptCounter.last_number)).scalar_one()
    return last - count + 1


@dataclass(frozen=True, slots=True)
class Covered:
    """A gift a receipt is to cover, and how much of it."""

    donation: Donation
    amount_minor: int


def issue(session: Session, organisation_id: int, covered: list[Covered], *, kind: str, issued_on: dt.date,
          created_by: str, replaces: Receipt | None = None, language: str | None = None) -> Receipt:
    """A receipt for these gifts (one donor, one currency), numbered in the organisation's series of the year."""
    [receipt] = issue_many(session, organisation_id, [covered], kind=kind, issued_on=issued_on,
                           created_by=created_by, replaces=replaces, language=language)
    return receipt


def issue_many(session: Session, organisation_id: int, groups: list[list[Covered]], *, kind: str,
               issued_on: dt.date, created_by: str, replaces: Receipt | None = None,
               language: str | None = None) -> list[Receipt]:
    """A receipt for each group of gifts (one donor, one currency each), numbered in a row of the series: a batch
    costs a handful of statements, not a handful a receipt (annual receipts for a city's donors)."""
    for covered in groups:
        _check_covered(covered)
    settings = settings_of(session, organisation_id)
    donor_ids = {covered[0].donation.donor_id for covered in groups}
    donors = {donor.id: donor for donor in session.scalars(select(Donor).where(Donor.id.in_(donor_ids)))}
    first = _next_sequence(session, organisation_id, issued_on.year, len(groups))
    receipts = [_receipt(settings, donors[covered[0].donation.donor_id], covered, first + index, kind=kind,
                         issued_on=issued_on, created_by=created_by, replaces=replaces,
                         language=language or settings.language)
                for index, covered in enumerate(groups)]
    session.add_all(receipts)
    session.flush()
    for receipt, covered in zip(receipts, groups, strict=True):
        session.add_all(ReceiptLine(receipt_id=receipt.id, donation_id=item.donation.id,
                                    amount_minor=item.amount_minor) for item in covered)
        delivery = delivery_of(receipt, donors[receipt.donor_id].email)
        if delivery is not None:
            session.add(delivery)
    session.flush()
    session.info[ISSUED] = True  # (the web layer sends the emails once the transaction is committed)
    return receipts


def _check_covered(covered: list[Covered]) -> None:
    if not covered:
        raise InvalidState("there is nothing left to receipt", field="donation_id")
    donors = {item.donation.donor_id for item in covered}
    currencies = {item.donation.currency for item in covered}
    if len(donors) != 1 or None in donors or len(currencies) != 1:
        raise InvalidInput("a receipt covers gifts of one named donor in one currency", field="donation_id")


def _receipt(settings: ReceiptSettings, donor: Donor, covered: list[Covered], sequence: int, *, kind: str,
             issued_on: dt.date, created_by: str, replaces: Receipt | None, language: str) -> Receipt:
    funds = {item.donation.fund_id for item in covered}
    return Receipt(
        organisation_id=settings.organisation_id, number=f"{settings.prefix}-{issued_on.year}-{sequence:06d}",
        year=issued_on.year, sequence=sequence, kind=kind, donor_id=donor.id,
        fund_id=funds.pop() if len(funds) == 1 else None, amount_minor=sum(item.amount_minor for item in covered),
        advantage_minor=sum(min(item.donation.goods_value_minor or 0, item.amount_minor) for item in covered),
        currency=covered[0].donation.currency, issued_on=issued_on,
        period_start=min(item.donation.received_on for item in covered),
        period_end=max(item.donation.received_on for item in covered),
        replaces_receipt_id=replaces.id if replaces else None, jurisdiction=settings.jurisdiction,
        language=language, donor_name=donor.name, donor_address=donor.address or "",
        donor_tax_id=donor.tax_id or "", description=_description(covered), created_at=utc_now(),
        created_by=created_by)


def _description(covered: list[Covered]) -> str:
    if len(covered) == 1:
        donation = covered[0].donation
        return (donation.in_kind_description or donation.description or "")[:500]
    return f"{len(covered)} gifts"


def receipt_on_recording(session: Session, donation: Donation) -> None:
    """A gift just recorded: receipted at once when the organisation issues a receipt per gift and the gift has a
    named donor (an anonymous gift has no one to receipt)."""
    if donation.donor_id is None or settings_of(session, donation.organisation_id).timing != \
            ReceiptTiming.PER_DONATION:
        return
    issue(session, donation.organisation_id, [Covered(donation, donation.amount_minor)],
          kind=ReceiptKind.DONATION, issued_on=utc_now().date(), created_by=donation.created_by)


def active_receipts(session: Session, donation_id: int) -> list[Receipt]:
    """The receipts covering the gift that are not voided."""
    return list(session.scalars(select(Receipt).join(ReceiptLine, ReceiptLine.receipt_id == Receipt.id).where(
        ReceiptLine.donation_id == donation_id,
        ~exists().where(ReceiptVoid.receipt_id == Receipt.id)).order_by(Receipt.id)))


def is_voided(session: Session, receipt_id: int) -> bool:
    return session.get(ReceiptVoid, receipt_id) is not None


def void_receipt(session: Session, receipt: Receipt, *, reason: str, voided_by: str,
                 refund_id: int | None = None) -> ReceiptVoid:
    reason = required_text(reason, "reason", 500)
    inserted = insert_unless_taken(session, ReceiptVoid, {
        "receipt_id": receipt.id, "reason": reason, "refund_id": refund_id, "voided_at": utc_now(),
        "voided_by": voided_by}, ("receipt_id",))
    if inserted is None:
        raise InvalidState(f"receipt {receipt.number} is already void", field="receipt_id")
    return inserted


def replace_receipt(session: Session, receipt: Receipt, *, reason: str, replaced_by: str,
                    refund_id: int | None = None, language: str | None = None) -> Receipt | None:
    """Voids the receipt and issues one for what its gifts hold now (their amounts less refunds and what other
    receipts cover), stating the number it replaces, in ``language`` if given (a donor asking for their receipt in
    English), else the organisation's; None when nothing is left to receipt."""
    void_receipt(session, receipt, reason=reason, voided_by=replaced_by, refund_id=refund_id)
    covered = _what_is_left(session, receipt)
    if not covered:
        return None
    return issue(session, receipt.organisation_id, covered, kind=receipt.kind, issued_on=utc_now().date(),
                 created_by=replaced_by, replaces=receipt,
                 language=one_of(language, ReceiptLanguage, "language") if language else None)


def _what_is_left(session: Session, receipt: Receipt) -> list[Covered]:
    covered = []
    for line in session.scalars(select(ReceiptLine).where(ReceiptLine.receipt_id == receipt.id)
                                .order_by(ReceiptLine.donation_id)):
        donation = session.get(Donation, line.donation_id, populate_existing=True)
        left = donation.amount_minor - donation.refunded_minor - _covered_elsewhere(session, donation.id)
        if left > 0:
            covered.append(Covered(donation, left))
    return covered


def _covered_elsewhere(session: Session, donation_id: int) -> int:
    """What the gift's receipts that are not voided cover."""
    covered = session.scalar(select(func.coalesce(func.sum(ReceiptLine.amount_minor), 0)).where(
        ReceiptLine.donation_id == donation_id,
        ~exists().where(ReceiptVoid.receipt_id == ReceiptLine.receipt_id)))
    return int(covered or 0)  # (PostgreSQL sums BIGINTs as NUMERIC: a Decimal, never near money here)


def on_refund(session: Session, refund: Refund) -> None:
    """A refund recorded: each receipt covering the gift is replaced by one for what is left (or only voided,
    when nothing is), in the refund's transaction."""
    for receipt in active_receipts(session, refund.donation_id):
        replace_receipt(session, receipt, reason=f"refund {refund.id} of {refund.amount_minor} minor units",
                        replaced_by=refund.created_by, refund_id=refund.id)


def on_refund_cancelled(session: Session, refund: Refund) -> None:
    """A refund cancelled: the gift is whole again, so its receipt is too — the active one replaced by one for the
    larger amount, or, when the refund had voided the last one, a new one replacing it."""
    active = active_receipts(session, refund.donation_id)
    reason = f"refund {refund.id} cancelled"
    if active:
        for receipt in active:
            replace_receipt(session, receipt, reason=reason, replaced_by=refund.cancelled_by or "")
        return
    successors = select(Receipt.replaces_receipt_id).where(Receipt.replaces_receipt_id.is_not(None))
    voided = session.scalars(select(Receipt).join(ReceiptLine, ReceiptLine.receipt_id == Receipt.id).where(
        ReceiptLine.donation_id == refund.donation_id, Receipt.id.not_in(successors))
        .order_by(Receipt.id.desc())).first()  # (the newest of the gift's receipts that nothing replaces)
    if voided is None:
        return  # (the gift had no receipt: an organisation that receipts yearly, say)
    covered = _what_is_left(session, voided)
    if covered:
        issue(session, voided.organisation_id, covered, kind=voided.kind, issued_on=utc_now().date(),
              created_by=refund.cancelled_by or "", replaces=voided)


def issue_on_request(session: Session, organisation_id: int, donation_id: int, created_by: str) -> Receipt:
    """A receipt for what of the gift no receipt covers yet."""
    donation = get_owned(session, Donation, organisation_id, donation_id, "donation")
    lock_gifts(session, [donation.id])
    left = donation.amount_minor - donation.refunded_minor - _covered_elsewhere(session, donation.id)
    if donation.donor_id is None:
        raise InvalidState("an anonymous gift has no one to receipt", field="donation_id")
    if left <= 0:
        raise InvalidState("every fen of this gift is receipted or refunded already", field="donation_id")
    return issue(session, organisation_id, [Covered(donation, left)], kind=ReceiptKind.DONATION,
                 issued_on=utc_now().date(), created_by=created_by)


def get_receipt(session: Session, organisation_id: int, receipt_id: int) -> Receipt:
    return get_owned(session, Receipt, organisation_id, receipt_id, "receipt")


def receipt_by_number(session: Session, number: str) -> Receipt | None:
    return session.scalars(select(Receipt).where(Receipt.number == number)).first()


def receipt_status(session: Session, receipt: Receipt) -> tuple[str, Receipt | None]:
    """``issued``, ``voided`` or ``replaced`` (with the receipt that replaces it)."""
    successor = session.scalars(select(Receipt).where(Receipt.replaces_receipt_id == receipt.id)).first()
    if successor is not None:
        return "replaced", successor
    return ("voided" if is_voided(session, receipt.id) else "issued"), None


def lines_of(session: Session, receipt_id: int) -> list[tuple[ReceiptLine, Donation]]:
    rows = session.execute(select(ReceiptLine, Donation).join(Donation, Donation.id == ReceiptLine.donation_id)
                           .where(ReceiptLine.receipt_id == receipt_id).order_by(Donation.received_on, Donation.id))
    return [(line, donation) for line, donation in rows]


@dataclass(frozen=True, slots=True)
class ReceiptFilter:
    donor_id: int | None = None
    donation_id: int | None = None
    year: int | None = None


def list_receipts(session: Session, organisation_id: int, which: ReceiptFilter, *, after: int | None,
                  limit: int) -> Page:
    query = select(Receipt).where(Receipt.organisation_id == organisation_id)
    if which.donor_id is not None:
        query = query.where(Receipt.donor_id == which.donor_id)
    if which.year is not None:
        query = query.where(Receipt.year == which.year)
    if which.donation_id is not None:
        query = query.where(exists().where(ReceiptLine.receipt_id == Receipt.id,
                                           ReceiptLine.donation_id == which.donation_id))
    return keyset_page(session, query, Receipt.id, after, limit)


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    """A receipt and what became of it: its status, why it was voided, what replaced it, the gifts it covers."""

    receipt: Receipt
    status: str
    void_reason: str
    replaced_by: str
    replaces: str
    donation_ids: tuple[int, ...]


def facts_of(session: Session, receipt: Receipt) -> ReceiptFacts:
    status, successor = receipt_status(session, receipt)
    voided = session.get(ReceiptVoid, receipt.id)
    replaced = session.get(Receipt, receipt.replaces_receipt_id) if receipt.replaces_receipt_id else None
    return ReceiptFacts(receipt, status, voided.reason if voided else "", successor.number if successor else "",
                        replaced.number if replaced else "",
                        tuple(line.donation_id for line, _ in lines_of(session, receipt.id)))


def void_on_request(session: Session, organisation_id: int, receipt_id: int, *, reason: str,
                    voided_by: str) -> Receipt:
    receipt = get_receipt(session, organisation_id, receipt_id)
    void_receipt(session, receipt, reason=reason, voided_by=voided_by)
    return receipt


def replace_on_request(session: Session, organisation_id: int, receipt_id: int, *, reason: str,
                       replaced_by: str, language: str | None = None) -> Receipt:
    """A new receipt for the gifts (a name or address corrected since, say), stating the number it replaces."""
    receipt = get_receipt(session, organisation_id, receipt_id)
    if is_voided(session, receipt.id):
        raise InvalidState(f"receipt {receipt.number} is void: it is no longer replaced", field="receipt_id")
    new = replace_receipt(session, receipt, reason=required_text(reason, "reason", 500), replaced_by=replaced_by,
                          language=language)
    if new is None:
        raise InvalidState("nothing of its gifts is left to receipt: it was voided", field="receipt_id")
    return new
