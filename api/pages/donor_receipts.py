"""A donor's receipts, reached by the signed link in each receipt's email (``/receipts/mine/<code>``): the list,
with each receipt's status, and each PDF (a copy, marked so). A code this site did not sign shows nothing."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from api.edge.receipt_mail import donor_of_code, verify_address
from api.edge.session import read_session
from api.pages.layout import money, render_page
from receipts import documents, register

blp = Blueprint("donor_receipts", __name__)


@blp.route("/receipts/mine/<code>")
def mine(code: str) -> Response:
    found = donor_of_code(current_app, code)
    if found is None:
        return render_page("not_found.html", status=404)
    session = read_session()
    receipts = register.list_receipts(session, found[0], register.ReceiptFilter(donor_id=found[1]), after=None,
                                      limit=500).items
    return render_page("receipts_mine.html", code=code, money=money,
                       receipts=[register.facts_of(session, receipt) for receipt in reversed(receipts)])


@blp.route("/receipts/mine/<code>/<number>.pdf")
def mine_pdf(code: str, number: str) -> Response:
    found = donor_of_code(current_app, code)
    session = read_session()
    receipt = register.receipt_by_number(session, number[:40]) if found else None
    if receipt is None or (receipt.organisation_id, receipt.donor_id) != found:
        return render_page("not_found.html", status=404)
    pdf = documents.copy_pdf(session, receipt, verify_address(current_app, receipt))
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{receipt.number}.pdf"'})
