"""China's official donation e-bill (公益事业捐赠票据), issued by the finance department's system, attached to the
receipt it stands for: once, to a receipt that stands, which is then rendered again as a new version (the first
stays, with its hash)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ledger.core.errors import InvalidState
from ledger.core.values import required_text
from ledger.db.engine import insert_unless_taken
from ledger.db.types import utc_now
from receipts.documents import new_version, original_document
from receipts.models import OfficialBill, Receipt
from receipts.register import get_receipt, is_voided


def attach_official_bill(session: Session, organisation_id: int, receipt_id: int, *, bill_code: str,
                         bill_number: str, check_code: str, issued_on: dt.date, attached_by: str,
                         verify_url: str) -> Receipt:
    receipt = get_receipt(session, organisation_id, receipt_id)
    if receipt.jurisdiction != "CN":
        raise InvalidState("an official donation e-bill is China's: this receipt follows other rules",
                           field="receipt_id")
    if is_voided(session, receipt.id):
        raise InvalidState(f"receipt {receipt.number} is void", field="receipt_id")
    values = {"bill_code": required_text(bill_code, "bill_code", 40),
              "bill_number": required_text(bill_number, "bill_number", 40),
              "check_code": required_text(check_code, "check_code", 40)}
    original_document(session, receipt, verify_url)  # (the first version, as issued, is kept before the next)
    attached = insert_unless_taken(session, OfficialBill, {
        "receipt_id": receipt.id, **values, "issued_on": issued_on, "attached_at": utc_now(),
        "attached_by": attached_by}, ("receipt_id",))
    if attached is None:
        raise InvalidState(f"receipt {receipt.number} has its official e-bill already", field="receipt_id")
    new_version(session, receipt, verify_url)
    return receipt
