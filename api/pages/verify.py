"""The public verification of a receipt: ``/verify/<number>?t=<token>``, the address in its QR code.

The token is the organisation's Ed25519 signature over what the receipt says; the page shows the receipt only when
the token proves it (a missing, forged or altered token, or a number that is not there, all get the same page
saying nothing about any receipt: numbers cannot be enumerated). It shows whether the receipt is valid, voided or
replaced, the organisation, fund, amount and date, the donor's name masked (张*) and the SHA-256 of its PDF.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from api.edge.errors import not_found
from api.edge.session import database, read_session
from api.pages.layout import money, render_page
from ledger.books.organisations import get_fund, get_organisation
from receipts import documents, register, signing
from receipts.inclusion import receipt_proofs

blp = Blueprint("verify", __name__)


def _proven(session, number: str):
    """The receipt the number names, if the request's token (``?t=``) proves it; else None."""
    receipt = register.receipt_by_number(session, number[:40])
    secret = current_app.config["RECEIPT_SIGNING_SECRET"].encode()
    token = request.args.get("t", "")
    if receipt is None or not signing.token_holds(
            signing.public_key_text(secret, receipt.organisation_id), token,
            signing.signed_text(receipt.organisation_id, receipt.number, receipt.amount_minor, receipt.currency,
                                receipt.issued_on)):
        return None
    return receipt


@blp.route("/verify/<number>/inclusion.json")
def inclusion(number: str) -> Response:
    """The receipt's gifts with their Merkle inclusion proofs in the published reports (a file the donor keeps and
    checks with ``scripts/verify_inclusion.py``, no server needed). The same 404 as the page for anything else."""
    session = read_session()
    receipt = _proven(session, number)
    if receipt is None:
        return not_found("no such receipt, or the address's token is not its own")
    response = current_app.response_class(json.dumps(receipt_proofs(session, receipt), indent=1),
                                          mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{receipt.number}-inclusion.json"'
    response.cache_control.private = True
    return response


@blp.route("/verify/<number>")
def verify(number: str) -> Response:
    session = read_session()
    receipt = _proven(session, number)
    if receipt is None:
        return render_page("verify.html", status=404, receipt=None)
    secret = current_app.config["RECEIPT_SIGNING_SECRET"].encode()
    facts = register.facts_of(session, receipt)
    address = documents.verify_address(current_app.config["PUBLIC_URL"], secret, receipt)
    document = database().write(lambda write: documents.original_document(
        write, register.receipt_by_number(write, receipt.number), address))
    return render_page("verify.html", receipt=receipt, facts=facts, money=money, sha256=document.sha256,
                       organisation=get_organisation(session, receipt.organisation_id),
                       fund=get_fund(session, receipt.organisation_id, receipt.fund_id) if receipt.fund_id else None,
                       donor=receipt.donor_name[:1] + "*",
                       public_key=signing.public_key_text(secret, receipt.organisation_id))
