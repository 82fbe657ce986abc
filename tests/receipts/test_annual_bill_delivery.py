"""Annual receipts (the CLI, twice: nothing issued twice), the official e-bill attached as a new PDF version,
receipts emailed with their PDF (a refusal retried, not lost), and the donor's signed link to their receipts."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid

import pytest
from pypdf import PdfReader

from api.edge.receipt_mail import donor_code
from tests.api.support import make_app
from tests.payments.test_confirmation_email import Inbox, free_port, sent_to
from tests.receipts.test_register import YEAR, donor, give, key, receipts_of


def annual(world) -> None:
    world.call("org_admin", "PUT", world.url("/receipt-settings"), {
        "prefix": f"A{uuid.uuid4().hex[:6].upper()}", "timing": "annual", "jurisdiction": "CN",
        "language": "zh-CN"}, key=key())


def test_annual_receipts_cover_each_donors_year_once_however_often_the_command_runs(world):
    annual(world)
    first, second = donor(world, "王五"), donor(world, "赵六")
    gifts = [give(world, 1_000, first), give(world, 2_000, first), give(world, 500, second), give(world, 300)]
    refund_of_one = world.call("org_admin", "POST", world.url(f"/donations/{gifts[1]['id']}/refunds"),
                               {"amount_minor": 500, "refunded_on": dt.date.today().isoformat()}, key=key())
    runner = world.app.test_cli_runner()

    once = runner.invoke(args=["receipts", "issue-annual", "--organisation", str(world.org), "--year", str(YEAR)])
    twice = runner.invoke(args=["receipts", "issue-annual", "--organisation", str(world.org), "--year", str(YEAR)])

    assert refund_of_one.status_code == 201 and once.exit_code == 0, once.output
    assert "2 receipt(s)" in once.output and "0 receipt(s)" in twice.output
    [for_first] = receipts_of(world, gifts[0]["id"])
    assert receipts_of(world, gifts[1]["id"]) == [for_first] and receipts_of(world, gifts[3]["id"]) == []
    assert (for_first["kind"], for_first["amount_minor"], sorted(for_first["donation_ids"])) == (
        "annual", 2_500, sorted([gifts[0]["id"], gifts[1]["id"]]))
    assert receipts_of(world, gifts[2]["id"])[0]["amount_minor"] == 500


def test_a_gift_after_the_annual_run_is_covered_by_the_next_run_only(world):
    annual(world)
    who = donor(world)
    give(world, 1_000, who)
    runner = world.app.test_cli_runner()
    runner.invoke(args=["receipts", "issue-annual", "--organisation", str(world.org), "--year", str(YEAR)])
    late = give(world, 700, who)

    again = runner.invoke(args=["receipts", "issue-annual", "--organisation", str(world.org), "--year", str(YEAR)])

    assert "1 receipt(s)" in again.output and receipts_of(world, late["id"])[0]["amount_minor"] == 700


def test_the_official_e_bill_is_attached_once_and_the_pdf_gets_a_new_version(world):
    [receipt] = receipts_of(world, give(world, 5_000, donor(world))["id"])
    bill = {"bill_code": "51010126", "bill_number": "0000123456", "check_code": "a1b2c3", "issued_on": "2026-11-30"}
    first_pdf = world.call("auditor", "GET", world.url(f"/receipts/{receipt['id']}/pdf?version=original")).data

    attached = world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/official-bill"), bill, key=key())
    again = world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/official-bill"), bill, key=key())

    latest = world.call("auditor", "GET", world.url(f"/receipts/{receipt['id']}/pdf?version=original")).data
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(latest)).pages)
    assert attached.status_code == 200 and again.status_code == 409
    assert latest != first_pdf and "0000123456" in text and "财政电子票据代码" in text and "a1b2c3" in text


@pytest.fixture
def inbox():
    from aiosmtpd.controller import Controller

    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def test_a_receipt_is_emailed_with_its_pdf_and_a_refusal_is_retried_not_lost(world, inbox):
    app = make_app(world.db, SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.port, PUBLIC_URL="https://give.example.org")
    address = f"donor-{uuid.uuid4().hex[:10]}@example.org"
    who = world.call("org_admin", "POST", world.url("/donors"), {"name": "钱七", "email": address}).json["id"]
    inbox.refuse = True
    gift = give(world, 6_600, who)
    runner = app.test_cli_runner()

    refused = runner.invoke(args=["receipts", "send", "--now"])
    inbox.refuse = False
    sent = runner.invoke(args=["receipts", "send", "--now"])
    again = runner.invoke(args=["receipts", "send", "--now"])

    [message] = sent_to(inbox, address, receipts=True)
    [receipt] = receipts_of(world, gift["id"])
    [attachment] = list(message.iter_attachments())
    assert "0 receipt email(s) sent" in refused.output and "receipt email(s) sent" in sent.output
    assert "0 receipt email(s) sent" in again.output
    assert receipt["number"] in message["Subject"] and attachment.get_filename() == f"{receipt['number']}.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    link = re.search(r"https://give\.example\.org(/receipts/mine/\S+)", message.get_body().get_content())[1]
    page = app.test_client().get(link).get_data(as_text=True)
    assert receipt["number"] in page
    app.extensions["ledger_db"].dispose()


def test_a_receipt_voided_before_its_email_went_is_not_sent(world, inbox):
    app = make_app(world.db, SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.port)
    address = f"donor-{uuid.uuid4().hex[:10]}@example.org"
    who = world.call("org_admin", "POST", world.url("/donors"), {"name": "吴十", "email": address}).json["id"]
    inbox.refuse = True
    [receipt] = receipts_of(world, give(world, 1_000, who)["id"])
    world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/void"), {"reason": "wrong donor"},
               key=key())
    inbox.refuse = False

    result = app.test_cli_runner().invoke(args=["receipts", "send", "--now"])

    assert result.exit_code == 0 and sent_to(inbox, address, receipts=True) == []
    app.extensions["ledger_db"].dispose()


def test_the_donors_link_lists_only_their_receipts_and_a_forged_one_nothing(world):
    first, second = donor(world, "孙八"), donor(world, "周九")
    mine, theirs = give(world, 1_100, first), give(world, 2_200, second)
    [my_receipt], [their_receipt] = receipts_of(world, mine["id"]), receipts_of(world, theirs["id"])
    code = donor_code(world.app, world.org, first)
    client = world.app.test_client()

    page = client.get(f"/receipts/mine/{code}?lang=en").get_data(as_text=True)
    pdf = client.get(f"/receipts/mine/{code}/{my_receipt['number']}.pdf")
    not_mine = client.get(f"/receipts/mine/{code}/{their_receipt['number']}.pdf")
    forged = client.get(f"/receipts/mine/{code[:-3]}xyz")

    assert my_receipt["number"] in page and their_receipt["number"] not in page
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert not_mine.status_code == 404 and forged.status_code == 404
