"""Receipts emailed to their donors, the original PDF attached, with the signed link to all their receipts.

Which receipts are due, the claim and the retries are the register's (``receipts.delivery``); this writes the
email in the receipt's language and sends it over the same SMTP server as the confirmations. Run after a write that
issued receipts (once its answer is sent), by `flask worker` after an event, and by `flask receipts send`.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import Flask, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from api.edge.language import LANGUAGES, money
from api.edge.mail import send_message
from ledger.books.organisations import get_organisation
from ledger.db.types import utc_now
from receipts import delivery, documents, register

log = logging.getLogger(__name__)
DONOR_SALT = "fundledger donor receipts link"


def donor_code(app: Flask, organisation_id: int, donor_id: int) -> str:
    """The code in a donor's link to their receipts: signed with the app's key, so only this site makes one."""
    return URLSafeSerializer(app.config["SECRET_KEY"], salt=DONOR_SALT).dumps([organisation_id, donor_id])


def donor_of_code(app: Flask, code: str) -> tuple[int, int] | None:
    try:
        found = URLSafeSerializer(app.config["SECRET_KEY"], salt=DONOR_SALT).loads(code)
    except BadSignature:
        return None
    if not (isinstance(found, list) and len(found) == 2 and all(isinstance(part, int) for part in found)):
        return None
    return found[0], found[1]


def verify_address(app: Flask, receipt) -> str:
    return documents.verify_address(app.config["PUBLIC_URL"], app.config["RECEIPT_SIGNING_SECRET"].encode(), receipt)


def send_due_receipts(app: Flask, *, skip_pauses: bool = False) -> int:
    """Sends every receipt due (``skip_pauses``: the failed ones too, before their pause is over); how many went.
    In an app context."""
    if not app.config.get("SMTP_HOST"):
        return 0
    database = app.extensions["ledger_db"]
    due_by = utc_now() + (delivery.MAX_PAUSE if skip_pauses else dt.timedelta(0))
    sent, after = 0, 0
    while True:  # page by page, each receipt tried once a round (a refused one waits for the next round)
        with database.read() as session:
            due = delivery.deliveries_due(session, due_by=due_by, after=after)
        if not due:
            return sent
        after = due[-1]
        sent += sum(_send_one(app, database, receipt_id, due_by) for receipt_id in due)


def _send_one(app: Flask, database, receipt_id: int, due_by) -> int:
    message = database.write(lambda session: _claimed(app, session, receipt_id, due_by))
    if message is None:
        return 0  # (another sender claimed it, or the receipt was voided before its email went)
    try:
        send_message(app.config, message)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("receipt %s could not be emailed (%s): it will be tried again", receipt_id, error)
        reason = str(error)  # (the name ``error`` is gone once the except block ends)
        database.write(lambda session: delivery.not_delivered(session, receipt_id, reason))
        return 0
    database.write(lambda session: delivery.delivered(session, receipt_id))
    return 1


def _claimed(app: Flask, session, receipt_id: int, due_by) -> EmailMessage | None:
    claimed = delivery.claim_delivery(session, receipt_id, due_by=due_by)
    if claimed is None:
        return None
    receipt = session.get(register.Receipt, receipt_id)
    if register.is_voided(session, receipt_id):  # (voided or replaced before its email went: not sent)
        delivery.skipped(session, receipt_id)
        return None
    organisation = get_organisation(session, receipt.organisation_id)
    pdf = documents.original_document(session, receipt, verify_address(app, receipt)).pdf
    link = f"{app.config['PUBLIC_URL'].rstrip('/')}/receipts/mine/" \
           f"{donor_code(app, receipt.organisation_id, receipt.donor_id)}?lang={receipt.language}"
    with force_locale(LANGUAGES.get(receipt.language, "en")):
        subject = _("Your receipt %(number)s from %(organisation)s", number=receipt.number,
                    organisation=organisation.name)
        body = render_template("mail/receipt.txt", receipt=receipt, organisation=organisation, link=link,
                               verify=verify_address(app, receipt),
                               amount=money(receipt.amount_minor, receipt.currency))
    message = EmailMessage()
    message["Subject"], message["To"] = subject, claimed.email
    message["From"] = formataddr((organisation.name, app.config["MAIL_FROM"]))
    message["Message-ID"] = make_msgid(idstring=f"receipt-{receipt.id}-{claimed.attempts}",
                                       domain=app.config["MAIL_FROM"].split("@")[-1])
    message.set_content(body)
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{receipt.number}.pdf")
    return message
