"""The donation pages: a fund's page with its form (``/give/<organisation>/<fund code>``), the checkout, and the
page a donor comes back to, which shows the gift's real status.

The form is Flask-WTF's (its CSRF token signed with the app's secret key, kept in the session cookie); what the
donor filled in is judged by ``ledger.payments.gifts``, whose refusals are shown next to the field they name. With
no payment processor configured the checkout is the demo's (``ledger.payments.demo_channel``): a page of this site
that says plainly that it is a test and that no money moves.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, redirect, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, TextAreaField

from api.edge.channels import stripe_account
from api.edge.jobs import after_the_answer, send_owed_mail
from api.edge.mail import token_of_cancel_code
from api.edge.session import database, read_session
from api.pages.layout import money, page_language, page_url, render_page
from ledger.books.organisations import get_fund
from ledger.core.errors import ChannelUnavailable, InvalidState, LedgerError, NotFound
from ledger.core.money import Money
from ledger.db.types import utc_now
from ledger.demo import DEMO_NAME
from ledger.payments import demo_channel, stripe_channel
from ledger.payments.gifts import (
    GiftForm,
    donation_page,
    gift_by_token,
    gifts_received,
    monthly_cancelled,
    start_gift,
)

blp = Blueprint("giving", __name__)
# The ledger's names for the form's fields, where they differ (the donor's address is checked as ``email``).
FIELD_OF = {"email": "donor_email", "amount": "amount"}


class GiveForm(FlaskForm):
    amount = RadioField(validate_choice=False)  # a preset's minor units, or "other"
    other_amount = StringField()
    donor_name = StringField()
    donor_email = StringField()
    donor_address = StringField()
    donor_tax_id = StringField()
    name_public = BooleanField()
    dedication = TextAreaField()
    monthly = BooleanField()


class CheckoutForm(FlaskForm):
    """The demo checkout's two buttons (``pay``, ``leave``): a form for its CSRF token."""


class CancelForm(FlaskForm):
    """The button that cancels a monthly gift: a form for its CSRF token."""


@blp.route("/give/<int:organisation_id>/<fund_code>", methods=["GET", "POST"])
def give(organisation_id: int, fund_code: str) -> Response:
    try:
        page = donation_page(read_session(), organisation_id, fund_code)
    except NotFound:
        return _not_found()
    form = GiveForm()
    form.amount.choices = [(str(preset), money(preset, page.fund.currency)) for preset in page.presets] + \
        [("other", _("Another amount"))]
    account = stripe_account()
    if account is None and not _test_mode_for(page):  # nothing would take the payment: no form at all
        return render_page("give.html", status=404 if request.method == "POST" else 200, page=page, form=None,
                           errors={}, money=money, test_mode=False)
    if request.method == "GET":
        form.amount.data = str(page.presets[len(page.presets) // 2]) if page.presets else "other"
        return _form_page(page=page, form=form, errors={}, money=money)
    if not form.validate_on_submit():  # (only the CSRF token is validated here: the rules are the ledger's)
        return _form_page(status=400, page=page, form=form, money=money,
                           errors={"form": _("This form has expired. Please send it again.")})
    try:
        filled = _gift_form(form, page.fund.currency)
        gift = database().write(lambda session: start_gift(
            session, donation_page(session, organisation_id, fund_code), filled,
            stripe_channel.CHANNEL if account else demo_channel.CHANNEL))
    except LedgerError as refusal:
        errors = {FIELD_OF.get(refusal.field, refusal.field): _refusal_text(refusal, page)}
        return _form_page(status=422, page=page, form=form, errors=errors, money=money)
    if account is None:
        return redirect(page_url("giving.checkout", token=gift.token), code=303)
    try:
        checkout_url = stripe_channel.start_checkout(
            account, gift, page.fund.name, success_url=page_url("giving.status", token=gift.token, _external=True),
            cancel_url=page_url("giving.give", organisation_id=organisation_id, fund_code=fund_code, _external=True))
    except ChannelUnavailable:
        return _form_page(status=503, page=page, form=form, money=money, errors={
            "form": _("The payment could not be started: nothing was charged. Please try again in a moment.")})
    return redirect(checkout_url, code=303)


def _test_mode_for(page) -> bool:
    """Whether the demo's checkout may take this organisation's gifts, no processor being configured: the demo
    foundation's only by default (DEMO_CHECKOUT=demo), so that a real organisation whose Stripe key is missing
    never records gifts that nobody paid; every organisation's with DEMO_CHECKOUT=on (trying FundLedger out)."""
    setting = current_app.config["DEMO_CHECKOUT"]
    return setting == "on" or (setting == "demo" and page.organisation.name == DEMO_NAME)


def _form_page(status: int = 200, **context) -> Response:
    """The fund's page with its form; the notice of test mode when no payment processor is configured."""
    return render_page("give.html", status=status, test_mode=stripe_account() is None, **context)


def _gift_form(form: GiveForm, currency: str) -> GiftForm:
    # A typed amount wins over the buttons: without JavaScript nothing selects "another amount" for the donor.
    if (form.other_amount.data or "").strip() or form.amount.data == "other":
        amount = Money.parse(form.other_amount.data or "", currency).amount_minor
    elif (form.amount.data or "").isdigit():
        amount = int(form.amount.data)
    else:
        amount = 0  # (nothing chosen: refused below as out of bounds)
    return GiftForm(amount, form.donor_name.data or "", form.donor_email.data or "", form.donor_address.data or "",
                    form.donor_tax_id.data or "", form.name_public.data is True, form.dedication.data or "",
                    page_language(), monthly=form.monthly.data is True)


def _refusal_text(refusal: LedgerError, page) -> str:
    """The refusal in the page's language, for the fields a donor fills in."""
    fund = page.fund
    if refusal.field == "amount" and "minimum_minor" not in refusal.details:
        return _("Please write the amount as a number, like 100.00.")
    texts = {
        "amount": _("Please give from %(low)s to %(high)s.", low=money(fund.giving_min_minor, fund.currency),
                    high=money(fund.giving_max_minor, fund.currency)),
        "donor_name": _("Please give your name (up to 200 characters)."),
        "donor_email": _("Please give an email address: the receipt goes there."),
        "donor_address": _("The address is too long (up to 500 characters)."),
        "donor_tax_id": _("The tax number is too long (up to 40 characters)."),
        "dedication": _("The dedication is too long (up to 500 characters)."),
        "monthly": _("Monthly gifts are taken through Stripe, which is not set up here: please give once."),
    }
    return texts.get(FIELD_OF.get(refusal.field, refusal.field), refusal.message)


@blp.route("/give/checkout/<token>", methods=["GET", "POST"])
def checkout(token: str) -> Response:
    """The demo's checkout: the gift, a banner saying no money moves, pay or leave."""
    try:
        gift = gift_by_token(read_session(), token)
    except NotFound:
        return _not_found()
    if gift.channel != demo_channel.CHANNEL:  # a gift paid through a real processor is never "paid" here
        return _not_found()
    form = CheckoutForm()
    if request.method == "POST" and form.validate_on_submit() and gift.status == "pending":
        if "pay" in request.form:  # the demo's processor sends its signed event, which is stored, then applied
            body, header = demo_channel.signed_payment(gift, utc_now(), _demo_secret())
            demo_channel.receive(database(), body, header, _demo_secret(), utc_now())
            app = current_app._get_current_object()
            after_the_answer(lambda: send_owed_mail(app))
        else:
            database().write(lambda session: demo_channel.leave(session, token))
        return redirect(page_url("giving.status", token=token), code=303)
    if gift.status != "pending":
        return redirect(page_url("giving.status", token=token), code=303)
    return render_page("checkout.html", gift=gift, form=form, money=money,
                       fee=demo_channel.demo_fee(gift.amount_minor), fund=_fund(gift))


@blp.route("/give/gifts/<token>")
def status(token: str) -> Response:
    """Where the gift stands, read from the books each time (a donor may come back before the payment is known)."""
    session = read_session()
    try:
        gift = gift_by_token(session, token)
    except NotFound:
        return _not_found()
    fund = _fund(gift)
    return render_page("gift.html", gift=gift, fund=fund, money=money, received=gifts_received(session, fund))


def _demo_secret() -> bytes:
    """The demo processor's signing secret: derived from the app's key (each deployment its own)."""
    return hmac.new(current_app.config["SECRET_KEY"].encode(), b"fundledger demo processor", "sha256").digest()


def _fund(gift):
    return get_fund(read_session(), gift.organisation_id, gift.fund_id)


def _not_found() -> Response:
    return render_page("not_found.html", status=404)


@blp.route("/give/monthly/<code>", methods=["GET", "POST"])
def monthly(code: str) -> Response:
    """A monthly gift, reached by the signed link in the donor's email: what it is, and a button that cancels it
    (Stripe charges no later month; what was given stays recorded)."""
    app = current_app._get_current_object()
    token = token_of_cancel_code(app, code)
    try:
        plan = gift_by_token(read_session(), token or "")
    except NotFound:
        return _not_found()
    if not plan.monthly or plan.plan_id is not None:
        return _not_found()
    form, error = CancelForm(), None
    if request.method == "POST" and form.validate_on_submit() and plan.cancelled_at is None:
        try:
            stripe_channel.cancel_monthly(stripe_account() or _no_account(), plan)
            database().write(lambda session: monthly_cancelled(session, plan.token))
            return redirect(page_url("giving.monthly", code=code), code=303)
        except (ChannelUnavailable, InvalidState):
            error = _("Your monthly gift could not be cancelled just now: nothing changed. Please try again later.")
    plan = gift_by_token(read_session(), plan.token)
    return render_page("monthly.html", status=503 if error else 200, plan=plan, fund=_fund(plan), form=form,
                       error=error, money=money)


def _no_account():
    raise ChannelUnavailable("no Stripe account is configured here")
