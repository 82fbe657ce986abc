"""The donor's confirmation email, sent over SMTP to a real (local) server, aiosmtpd: once per gift recorded, in the
gift's language, with the cancel link of a monthly gift; owed again when the server refuses it, and sent by
``flask mail send-pending`` once it takes it; never sent twice."""

from __future__ import annotations

import email
import re
import socket
import uuid
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from ledger.db.models import Fund, OnlineGift
from tests.api.support import make_app
from tests.payments.checkout import CSRF, deliver
from tests.payments.test_stripe_monthly import give_monthly


class Inbox:
    """An SMTP server's handler: keeps each message it accepts; ``refuse`` makes it answer 451 (try later)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "451 4.3.0 mailbox busy, try later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def mailing(world, inbox):
    """The world's app (the demo's checkout) with its mail going to the inbox: (client, fund page URL)."""
    app = make_app(world.db, SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.port, MAIL_FROM="giving@example.org",
                   PUBLIC_URL="https://give.example.org")
    with world.db.read() as session:
        code = session.get(Fund, world.fund).code
    yield app.test_client(), f"/give/{world.org}/{code}"
    app.extensions["ledger_db"].dispose()


def give_and_pay(client, url: str, donor: str, language: str = "en", amount: str = "100.00"):
    page = f"{url}?lang={language}"
    token = CSRF.search(client.get(page).get_data(as_text=True))[1]
    started = client.post(page, data={"csrf_token": token, "amount": "other", "other_amount": amount,
                                      "donor_name": "Li Lei", "donor_email": donor})
    checkout = started.headers["Location"]
    token = CSRF.search(client.get(checkout).get_data(as_text=True))[1]
    paid = client.post(checkout, data={"csrf_token": token, "pay": "1"})
    paid.close()  # (the server sends the email once the answer is sent: when the response closes)
    return paid


def owed(world, donor: str) -> list[int]:
    with world.db.read() as session:
        return list(session.scalars(select(OnlineGift.id).where(
            OnlineGift.status == "succeeded", OnlineGift.confirmed_at.is_(None), OnlineGift.donor_email == donor)))


def donor() -> str:
    """A donor of this test alone (the world's database is shared: another test's gift may be owed its email too,
    and it goes on the same round)."""
    return f"donor-{uuid.uuid4().hex[:12]}@example.org"


def sent_to(inbox: Inbox, address: str, *, receipts: bool = False) -> list:
    """The confirmations sent to the address (``receipts``: the receipts' emails, which carry a PDF)."""
    return [message for message in inbox.messages
            if message["To"] == address and message.is_multipart() == receipts]


def test_a_gift_recorded_is_confirmed_once_by_email_in_the_donors_language(world, mailing, inbox):
    client, url = mailing
    address = donor()

    give_and_pay(client, url, address, "en")
    give_and_pay(client, url, address, "zh-CN", "50.00")

    english, chinese = sent_to(inbox, address)
    assert "giving@example.org" in english["From"]
    assert english["Subject"] == "Thank you for your gift to MINE"
    body = english.get_content()
    assert "Your gift of CN¥100.00 to MINE" in body and "https://give.example.org/give/gifts/" in body
    assert "cancel" not in body.lower()
    assert chinese["Subject"] == "感谢您向MINE捐赠" and "¥50.00" in chinese.get_content()
    assert owed(world, address) == []


def test_an_email_the_server_refuses_stays_owed_and_goes_later_once(world, mailing, inbox):
    client, url = mailing
    address = donor()
    inbox.refuse = True

    give_and_pay(client, url, address)

    assert inbox.messages == [] and len(owed(world, address)) == 1
    inbox.refuse = False
    runner = client.application.test_cli_runner()
    first, second = (runner.invoke(args=["mail", "send-pending"]) for _ in range(2))
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert "email(s) sent" in first.output and "0 email(s) sent" in second.output
    assert len(sent_to(inbox, address)) == 1 and owed(world, address) == []


def test_without_a_mail_server_nothing_is_sent_and_every_gift_stays_owed(world):
    app = make_app(world.db)
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}"

    address = donor()

    give_and_pay(client, url, address)

    assert len(owed(world, address)) == 1
    result = app.test_cli_runner().invoke(args=["mail", "send-pending"])
    assert result.exit_code != 0 and "FUNDLEDGER_SMTP_HOST" in result.output
    app.extensions["ledger_db"].dispose()


def test_a_monthly_gifts_email_carries_the_link_that_cancels_it(world, stand_in, inbox):
    from tests.payments.checkout import SECRET

    app = make_app(world.db, STRIPE_SECRET_KEY="sk_test_standin", STRIPE_API_BASE=stand_in.url,
                   STRIPE_WEBHOOK_SECRET=SECRET, SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.port,
                   PUBLIC_URL="https://give.example.org")
    client = app.test_client()
    with world.db.read() as session:
        url = f"/give/{world.org}/{session.get(Fund, world.fund).code}?lang=en"
    address = donor()
    give_monthly(client, url, email=address)
    session_id = next(iter(stand_in.sessions))
    stand_in.pay(session_id, fee=330)

    deliver(client, "checkout.session.completed", stand_in.sessions[session_id])
    deliver(client, "invoice.paid", stand_in.invoice(stand_in.sessions[session_id]["subscription"], fee=310))

    first, second = (message.get_content() for message in sent_to(inbox, address))
    link = re.search(r"https://give\.example\.org(/give/monthly/\S+)", first)[1]
    assert "every month until you cancel" in first and "This month’s gift of CN¥88.00" in second
    assert link in second  # (every month's email cancels the same plan)
    assert "Cancel my monthly gift" in client.get(link).get_data(as_text=True)
    app.extensions["ledger_db"].dispose()
