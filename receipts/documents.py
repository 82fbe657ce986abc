"""A receipt's PDF and its verification address: the view of the register a page shows, the original rendering
stored once with its SHA-256, and copies marked as such."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.organisations import get_fund, get_organisation
from ledger.db.engine import insert_unless_taken
from ledger.db.types import utc_now
from receipts.gift_aid import gift_aid_statement
from receipts.models import OfficialBill, Receipt, ReceiptDocument
from receipts.pdf import ReceiptView, render
from receipts.register import lines_of, receipt_status, settings_of
from receipts.signing import token


def verify_address(public_url: str, secret: bytes, receipt: Receipt) -> str:
    """Where anyone checks the receipt: its number and token (``/verify/<number>?t=<token>``)."""
    signed = token(secret, receipt.organisation_id, receipt.number, receipt.amount_minor, receipt.currency,
                   receipt.issued_on)
    return f"{public_url.rstrip('/')}/verify/{receipt.number}?t={signed}"


def receipt_view(session: Session, receipt: Receipt, verify_url: str, *, as_issued: bool = True) -> ReceiptView:
    """The page's content; ``as_issued`` for the original (its status then is ``issued``, whatever came later)."""
    replaced = session.get(Receipt, receipt.replaces_receipt_id) if receipt.replaces_receipt_id else None
    bill = session.get(OfficialBill, receipt.id)
    lines = tuple(line_of(donation, line.amount_minor) for line, donation in lines_of(session, receipt.id))
    return view_of(session, receipt, lines, verify_url, replaces_number=replaced.number if replaced else "",
                   status="issued" if as_issued else receipt_status(session, receipt)[0],
                   official_bill=(bill.bill_code, bill.bill_number, bill.check_code, bill.issued_on.isoformat())
                   if bill else ())


def line_of(donation, amount_minor: int) -> tuple:
    """A gift as a receipt lists it: received on, the amount it covers, what it was."""
    return donation.received_on, amount_minor, donation.in_kind_description or donation.description


def view_of(session: Session, receipt: Receipt, lines: tuple, verify_url: str, **more) -> ReceiptView:
    """The page's content from the receipt and its lines (the organisation and fund from the session's map)."""
    organisation = get_organisation(session, receipt.organisation_id)
    fund = get_fund(session, receipt.organisation_id, receipt.fund_id).name if receipt.fund_id else ""
    settings = settings_of(session, receipt.organisation_id)
    return ReceiptView(
        issuer_address=settings.issuer_address, signatory=settings.signatory,
        gift_aid=gift_aid_statement(session, receipt) if receipt.jurisdiction == "UK" else "",
        number=receipt.number, issued_on=receipt.issued_on, language=receipt.language,
        jurisdiction=receipt.jurisdiction, organisation_name=organisation.name,
        registration_number=organisation.registration_number, fund_name=fund, donor_name=receipt.donor_name,
        donor_address=receipt.donor_address, donor_tax_id=receipt.donor_tax_id, amount_minor=receipt.amount_minor,
        currency=receipt.currency, lines=lines, verify_url=verify_url, advantage_minor=receipt.advantage_minor,
        **more)


def store_originals(session: Session, issued: list[tuple[Receipt, tuple]], address_of, *, renders=map) -> None:
    """The first PDF of receipts just issued, with their lines already known ((received on, amount, what) each):
    rendered and kept without reading anything back (annual receipts, by the thousand). ``renders``: how the views
    become PDFs (``map``, or a process pool's, to render on every core)."""
    views = [view_of(session, receipt, lines, address_of(receipt)) for receipt, lines in issued]
    session.add_all(ReceiptDocument(receipt_id=receipt.id, version=1, sha256=hashlib.sha256(pdf).hexdigest(),
                                    pdf=pdf, created_at=utc_now())
                    for (receipt, _), pdf in zip(issued, renders(render, views), strict=True))
    session.flush()


def original_document(session: Session, receipt: Receipt, verify_url: str) -> ReceiptDocument:
    """The receipt's newest rendering; the first is made (and kept, with its SHA-256) the first time it is
    asked for. Rendering is deterministic, so two processes making it at once make the same bytes."""
    found = latest_document(session, receipt.id)
    if found is not None:
        return found
    pdf = render(receipt_view(session, receipt, verify_url))
    insert_unless_taken(session, ReceiptDocument, {
        "receipt_id": receipt.id, "version": 1, "sha256": hashlib.sha256(pdf).hexdigest(), "pdf": pdf,
        "created_at": utc_now()}, ("receipt_id", "version"))
    return latest_document(session, receipt.id)


def latest_document(session: Session, receipt_id: int) -> ReceiptDocument | None:
    return session.scalars(select(ReceiptDocument).where(ReceiptDocument.receipt_id == receipt_id)
                           .order_by(ReceiptDocument.version.desc())).first()


def copy_pdf(session: Session, receipt: Receipt, verify_url: str) -> bytes:
    """A reprint: marked 副本 / COPY, and VOID or REPLACED across the page when it is no longer valid."""
    return render(receipt_view(session, receipt, verify_url, as_issued=False), copy=True)


def new_version(session: Session, receipt: Receipt, verify_url: str) -> ReceiptDocument:
    """The receipt rendered again (something was attached to it), kept as its next version."""
    latest = latest_document(session, receipt.id)
    pdf = render(receipt_view(session, receipt, verify_url))
    session.add(ReceiptDocument(receipt_id=receipt.id, version=(latest.version if latest else 0) + 1,
                                sha256=hashlib.sha256(pdf).hexdigest(), pdf=pdf, created_at=utc_now()))
    session.flush()
    return latest_document(session, receipt.id)
