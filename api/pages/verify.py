"""The public verification of a receipt: ``/verify/<number>?t=<token>``, the address in its QR code.

The token is the organisation's Ed25519 signature over what the receipt says; the page shows the receipt only when
the token proves it (a missing, forged or altered token, or a number that is not there, all get the same page
saying nothing about any receipt: numbers cannot be enumerated). It shows whether the receipt is valid, voided or
replaced, the organisation, fund, amount and date, the donor's name masked (张*) and the SHA-256 of its PDF.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from api.edge.session import database, read_session
from api.pages.layout import money, render_page
from ledger.books.organisations import get_fund, get_organisation
from receipts import documents, register, signing

blp = Blueprint("verify", __name__)


@blp.route("/verify/<number>")
def verify(number: str) -> Response:
    session = read_session()
    receipt = register.receipt_by_number(session, number[:40])
    secret = current_app.config["RECEIPT_SIGNING_SECRET"].encode()
    token = request.args.get("t", "")
    if receipt is None or not signing.token_holds(
            signing.public_key_text(secret, receipt.organisation_id), token,
            signing.signed_text(receipt.organisation_id, receipt.number, receipt.amount_minor, receipt.currency,
                                receipt.issued_on)):
        return render_page("verify.html", status=404, receipt=None)
    facts = register.facts_of(session, receipt)
    address = documents.verify_address(current_app.config["PUBLIC_URL"], secret, receipt)
    document = database().write(lambda write: documents.original_document(
        write, register.receipt_by_number(write, receipt.number), address))
    return render_page("verify.html", receipt=receipt, facts=facts, money=money, sha256=document.sha256,
                       organisation=get_organisation(session, receipt.organisation_id),
                       fund=get_fund(session, receipt.organisation_id, receipt.fund_id) if receipt.fund_id else None,
                       donor=receipt.donor_name[:1] + "*",
                       public_key=signing.public_key_text(secret, receipt.organisation_id))
