"""A donor's check that their gifts are in the published reports: for each gift a receipt covers, an inclusion proof
in the latest version of every report whose period holds the gift's date (``ledger.reports.merkle``). The receipt's
number and its token (the donor has both, in the QR code) are the key: nobody else can ask."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.orm import Session

from ledger.reports.merkle import GiftLeaf
from ledger.reports.publishing import inclusion_proof, reports_covering
from receipts.models import Receipt
from receipts.register import lines_of


def receipt_proofs(session: Session, receipt: Receipt) -> dict:
    """The receipt's gifts, each with its leaf and its proofs (an empty list: no published report holds it yet)."""
    gifts = []
    for _line, donation in lines_of(session, receipt.id):
        leaf = GiftLeaf(donation.id, donation.organisation_id, donation.fund_id, donation.donor_id,
                        donation.amount_minor, donation.currency, donation.received_on)
        proofs = [inclusion_proof(report, leaf)
                  for report in reports_covering(session, donation.organisation_id, donation.fund_id,
                                                 donation.received_on)]
        gifts.append({"donation_id": donation.id, "leaf_fields": leaf.fields(), "leaf_hash": leaf.digest().hex(),
                      "proofs": [asdict(proof) for proof in proofs if proof is not None]})
    return {"receipt": receipt.number, "organisation_id": receipt.organisation_id, "gifts": gifts}
