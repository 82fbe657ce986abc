"""The donor's confirmation email: written from templates in the gift's language, sent over SMTP.

Which gifts are owed one, and the claim that keeps two senders from sending one twice, are the ledger's
(``ledger.payments.confirmations``); a send that fails gives its claim back, so the email goes on a later round
(the next event, or ``flask mail send-pending``) rather than never. With no ``SMTP_HOST`` configured nothing is
sent, and the gifts stay owed their email until a mail server is set up.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import Flask, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from api.edge.language import LANGUAGES, money
from ledger.books.organisations import get_fund, get_organisation
from ledger.payments.confirmations import (
    claim_confirmation,
    confirmation_sent,
    owed_confirmations,
    release_confirmation,
)

log = logging.getLogger(__name__)
CANCEL_SALT = "fundledger monthly gift cancel link"


def cancel_code(app: Flask, token: str) -> str:
    """The code in a monthly gift's cancel link: the plan's token signed with the app's secret key, so that only
    a link this site made (in the donor's email) cancels a gift."""
    return URLSafeSerializer(app.config["SECRET_KEY"], salt=CANCEL_SALT).dumps(token)


def token_of_cancel_code(app: Flask, code: str) -> str | None:
    try:
        token = URLSafeSerializer(app.config["SECRET_KEY"], salt=CANCEL_SALT).loads(code)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def send_owed_confirmations(app: Flask) -> int:
    """Sends each owed confirmation once; how many went. Run in an app context."""
    if not app.config.get("SMTP_HOST"):
        return 0
    database = app.extensions["ledger_db"]
    sent, after = 0, 0
    while True:  # page by page, each id tried once a round (a refused one waits for the next round)
        with database.read() as session:
            owed = owed_confirmations(session, after=after)
        if not owed:
            return sent
        after = owed[-1]
        for gift_id in owed:
            sent += _send_one(app, database, gift_id)


def _send_one(app: Flask, database, gift_id: int) -> int:
    message = database.write(lambda session: _claimed_message(app, session, gift_id))
    if message is None:
        return 0  # (another sender claimed it)
    try:
        send_message(app.config, message)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("the confirmation of gift %s could not be sent (%s): it is owed again", gift_id, error)
        database.write(lambda session: release_confirmation(session, gift_id))
        return 0
    database.write(lambda session: confirmation_sent(session, gift_id))
    return 1


def _claimed_message(app: Flask, session, gift_id: int) -> EmailMessage | None:
    gift = claim_confirmation(session, gift_id)
    if gift is None:
        return None
    fund, organisation = get_fund(session, gift.organisation_id, gift.fund_id), get_organisation(
        session, gift.organisation_id)
    plan_token = gift.token if gift.plan_id is None else session.get(type(gift), gift.plan_id).token
    base = app.config["PUBLIC_URL"].rstrip("/")
    links = {"status": f"{base}/give/gifts/{gift.token}?lang={gift.language}",
             "cancel": f"{base}/give/monthly/{cancel_code(app, plan_token)}?lang={gift.language}"
             if gift.monthly else None}
    with force_locale(LANGUAGES.get(gift.language, "en")):
        subject = _("Thank you for your gift to %(fund)s", fund=fund.name)
        body = render_template("mail/confirmation.txt", gift=gift, fund=fund, organisation=organisation,
                               links=links, amount=_amount(gift))
    message = EmailMessage()
    message["Subject"], message["To"] = subject, gift.donor_email
    message["From"] = formataddr((organisation.name, app.config["MAIL_FROM"]))
    message["Message-ID"] = make_msgid(idstring=f"gift-{gift.id}", domain=app.config["MAIL_FROM"].split("@")[-1])
    message.set_content(body)
    return message


def _amount(gift) -> str:
    return money(gift.paid_minor or gift.amount_minor, gift.currency)


def send_message(config, message: EmailMessage) -> None:
    """Sends one message through the configured SMTP server (STARTTLS and a login when configured)."""
    with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=float(config["SMTP_TIMEOUT"])) as smtp:
        if str(config["SMTP_STARTTLS"]).lower() in ("1", "true", "yes"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("SMTP_USERNAME"):
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
