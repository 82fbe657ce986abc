"""The fund manager's reconciliation screen (``/manage``): sign in with the API's users and passwords, pick an account
of money, and reconcile it — import a statement, match automatically, accept a suggestion, match or unmatch by hand,
record what the books lack from its line — then read the report (as a page, CSV or PDF).

Signing in issues the user an API token for a day (``ledger.access.tokens``) kept in the session cookie (signed with
the app's key, HttpOnly, SameSite=Lax; Secure behind https): every page asks the token store who it is, so signing
out (or revoking the token through the API) ends the session at once. Every form carries Flask-WTF's CSRF token. The
screen's writes are the API's own ledger calls, refused alike, each in one transaction with its audit record (the
same action names as the API's); a refusal is shown on the screen and recorded as the API's are.
"""

from __future__ import annotations

import datetime as dt
import functools
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, g, redirect, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from api.edge import audit, refusals
from api.edge.csv_export import csv_response
from api.edge.errors import status_for
from api.edge.session import database, read_session
from api.pages.layout import money, page_url, render_page
from ledger.access.policy import Need
from ledger.access.tokens import issue_token, principal_for_token, revoke_token, token_prefix
from ledger.access.users import find_user_by_password
from ledger.books.charts import get_account
from ledger.books.organisations import get_organisation
from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.db.types import utc_now
from ledger.reconciliation import closes, imports, mappings, matches, screen
from ledger.reconciliation.matches import REPORT_COLUMNS, report_rows
from ledger.reconciliation.matching import propose
from receipts import reconciliation_pdf

blp = Blueprint("manage", __name__, url_prefix="/manage")
TOKEN = "manager_token"
SESSION_DAYS = 1  # a screen's sign-in lasts a working day; the API's tokens are for programs
LINES_SHOWN = 100  # unmatched lines (and entries) a page lists; the report's CSV has them all
FORMATS = ("csv", "ofx", "camt053")


@blp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # the books' details: never kept by a browser or a proxy
    return response


@blp.before_request
def _who() -> Response | None:
    """Who the session's token belongs to (the API's principal), or to the sign-in page; a form without a valid CSRF
    token is refused before anything is read."""
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            return render_page("manage/message.html", status=400,
                               message=_("This form has expired. Please go back, reload the page and send it again."))
    if request.endpoint == "manage.sign_in":
        return None
    token = session.get(TOKEN)
    with database().lookup() as lookup:
        principal = principal_for_token(lookup, token) if token else None
    if principal is None:
        session.pop(TOKEN, None)
        return redirect(page_url("manage.sign_in", next=request.full_path if request.method == "GET" else None),
                        code=303)
    g.principal = principal
    return None


def needs(need: Need):
    """The view's role in its organisation (the API's rule for the same reads and writes)."""
    def decorate(view):
        @functools.wraps(view)
        def guarded(organisation_id: int, **kwargs):
            if not g.principal.allows(need, organisation_id):
                return render_page("manage/message.html", status=403, message=_(
                    "Your role in this organisation does not allow this: reconciliation is for its administrators "
                    "(auditors may read it)."))
            return view(organisation_id, **kwargs)
        guarded.need = need
        return guarded
    return decorate


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    if request.method == "GET":
        return render_page("manage/sign_in.html", csrf=generate_csrf(), email="", error=None)
    email = request.form.get("email", "").strip()
    user_and_token = database().write(lambda session_: _sign_in(session_, email, request.form.get("password", "")))
    if user_and_token is None:
        refusals.record(401, "unauthenticated", "the email or the password is wrong")
        return render_page("manage/sign_in.html", status=401, csrf=generate_csrf(), email=email,
                           error=_("The email or the password is wrong."))
    session.clear()  # (a new session: nothing of the one before sign-in is carried over)
    session[TOKEN] = user_and_token
    return redirect(_safe_next(request.args.get("next")), code=303)


def _sign_in(session_, email: str, password: str) -> str | None:
    user = find_user_by_password(session_, email, password) if email and password else None
    if user is None:
        return None
    token, _row = issue_token(session_, user.id, "manager screen", SESSION_DAYS)
    _audit(session_, "token.issue", None, {"email": email, "name": "manager screen"}, user_id=user.id)
    return token


def _safe_next(asked: str | None) -> str:
    """Back to the page that sent the manager to sign in: a path of this screen only (never another site)."""
    parts = urlsplit(asked or "")
    if asked and not parts.scheme and not parts.netloc and parts.path.startswith("/manage/") and \
            not parts.path.startswith("/manage/sign-"):
        return asked
    return page_url("manage.home")


@blp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    token = session.pop(TOKEN, None)
    prefix = token_prefix(token)
    if prefix:
        database().write(lambda session_: revoke_token(session_, prefix))
    session.clear()
    return redirect(page_url("manage.sign_in"), code=303)


@blp.route("/")
def home() -> Response:
    """The organisations the user reconciles (or reads), with their accounts of money."""
    principal = g.principal
    lookup = read_session()
    ids = [organisation_id for organisation_id, role in principal.roles.items()
           if principal.allows(Need.ORG_READ, organisation_id)]
    organisations = screen.organisations_named(lookup, ids)
    accounts = {organisation.id: screen.money_accounts(lookup, organisation.id) for organisation in organisations}
    return render_page("manage/home.html", csrf=generate_csrf(), organisations=organisations, accounts=accounts,
                       principal=principal, other_roles=len(principal.roles) - len(ids))


def _period(account_id: int) -> tuple[dt.date, dt.date]:
    """The period asked for (``start``, ``end``), else the latest statement's months."""
    try:
        start = dt.date.fromisoformat(request.args["start"]) if request.args.get("start") else None
        end = dt.date.fromisoformat(request.args["end"]) if request.args.get("end") else None
    except ValueError:
        raise InvalidInput("must be a date, YYYY-MM-DD", field="start") from None
    if start is None or end is None:
        first, last = screen.default_period(read_session(), account_id, utc_now().date())
        start, end = start or first, end or last
    if start > end:
        raise InvalidInput("the period's start must not be after its end", field="start")
    return start, end


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>")
@needs(Need.ORG_READ)
def account(organisation_id: int, account_id: int) -> Response:
    """The screen: the report's figures, the lines the books lack with their suggestions, the entries the bank lacks,
    the standing matches, and a form for each action."""
    lookup = read_session()
    found, start, end = _report_or_refusal(organisation_id, account_id)
    if isinstance(found, Response):
        return found
    items = matches.ledger_items(lookup, organisation_id, account_id, end=end)
    proposals = propose(found.unmatched_lines, items)
    by_item = {item.id: item for item in items}
    suggested = {}
    for proposal in sorted(proposals, key=lambda p: -p.score):
        for line_id in proposal.line_ids:
            suggested.setdefault(line_id, [])
            if len(suggested[line_id]) < 3:
                suggested[line_id].append((proposal, [by_item[i] for i in proposal.item_ids]))
    return render_page(
        "manage/account.html", csrf=generate_csrf(), money=money, report=found, start=start, end=end,
        organisation=get_organisation(lookup, organisation_id), account=get_account(lookup, organisation_id,
                                                                                     account_id),
        lines=found.unmatched_lines[:LINES_SHOWN], entries=found.unmatched_items[:LINES_SHOWN],
        suggested=suggested, standing=screen.standing_matches(lookup, organisation_id, account_id, start, end),
        funds=screen.funds_of(lookup, organisation_id), counters=screen.counter_accounts(lookup, organisation_id),
        layouts=list(mappings.list_mappings(lookup, organisation_id)), formats=FORMATS,
        can_write=g.principal.allows(Need.ORG_ADMIN, organisation_id))


def _books_currency(organisation_id: int) -> str:
    return get_organisation(read_session(), organisation_id).base_currency


def _not_found() -> Response:
    return render_page("manage/message.html", status=404, message=_("There is no such account of money here."))


def _back(organisation_id: int, account_id: int, period: dict | None = None) -> Response:
    """To the screen again, in the same period (the forms carry it) unless told another."""
    period = period or {name: request.form[name] for name in ("start", "end") if request.form.get(name)}
    return redirect(page_url("manage.account", organisation_id=organisation_id, account_id=account_id, **period),
                    code=303)


def _write(action: str, organisation_id: int, details: dict, work) -> object | None:
    """The write and its audit record in one transaction; a refusal is flashed and recorded, nothing written."""
    principal = g.principal

    def unit(session_):
        done = work(session_, principal.email)
        _audit(session_, action, organisation_id, details, user_id=principal.user_id)
        return done
    try:
        return database().write(unit)
    except LedgerError as refusal:
        refusals.record(status_for(refusal), refusal.code, refusal.message)
        flash(_refusal_text(refusal), "error")
        return None


def _audit(session_, action: str, organisation_id: int | None, details: dict, *, user_id: int | None) -> None:
    audit.record(session_, user_id=user_id, organisation_id=organisation_id, remote_addr=request.remote_addr or "",
                 method=request.method, path=request.path, action=action, status_code=201, details=details)


def _refusal_text(refusal: LedgerError) -> str:
    return _("Refused (%(field)s): %(reason)s", field=refusal.field or "—", reason=refusal.message)


def _ids(name: str) -> list[int]:
    return [int(value) for value in request.form.getlist(name) if value.isdigit()]


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/import", methods=["POST"])
@needs(Need.ORG_ADMIN)
def import_statement(organisation_id: int, account_id: int) -> Response:
    upload = request.files.get("file")
    file_format = request.form.get("format", "")
    if upload is None or not upload.filename or file_format not in FORMATS:
        flash(_("Choose the statement's file and its format."), "error")
        return _back(organisation_id, account_id)
    content, name = upload.read(), upload.filename

    def work(session_, by):
        layout = mappings.get_mapping(session_, organisation_id, request.form.get("mapping") or "cn_bank") \
            if file_format == "csv" else None
        return imports.import_statement(session_, organisation_id, account_id, filename=name, content=content,
                                        file_format=file_format, mapping=layout, imported_by=by)
    done = _write("statement.import", organisation_id, {"account_id": account_id, "filename": name,
                                                        "format": file_format}, work)
    if done is not None:
        flash(_("Statement imported: %(new)d new line(s), %(known)d already imported.", new=done.new_lines,
                known=done.known_lines), "notice")
        # (to the months the statement covers: its lines are what the manager turns to next)
        return _back(organisation_id, account_id, {"start": done.statement.period_start.replace(day=1).isoformat(),
                                                   "end": done.statement.period_end.isoformat()})
    return _back(organisation_id, account_id)


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/auto-match", methods=["POST"])
@needs(Need.ORG_ADMIN)
def auto_match(organisation_id: int, account_id: int) -> Response:
    done = _write("reconciliation.auto_match", organisation_id, {"account_id": account_id},
                  lambda session_, by: matches.auto_match(session_, organisation_id, account_id, by))
    if done is not None:
        flash(_("%(matches)d match(es) made: %(lines)d line(s) to %(entries)d entr(ies).", matches=done.matches,
                lines=done.lines, entries=done.entries), "notice")
    return _back(organisation_id, account_id)


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/match", methods=["POST"])
@needs(Need.ORG_ADMIN)
def match(organisation_id: int, account_id: int) -> Response:
    """A suggestion accepted, or the lines and entries ticked: matched if they sum alike."""
    line_ids, entry_ids = _ids("line_ids"), _ids("entry_ids")
    done = _write("reconciliation.match", organisation_id,
                  {"account_id": account_id, "line_ids": line_ids, "entry_ids": entry_ids},
                  lambda session_, by: matches.match(session_, organisation_id, account_id, line_ids, entry_ids, by))
    if done is not None:
        flash(_("Matched: %(amount)s.", amount=money(done.amount_minor, _books_currency(organisation_id))),
              "notice")
    return _back(organisation_id, account_id)


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/matches/<int:match_id>/unmatch", methods=["POST"])
@needs(Need.ORG_ADMIN)
def unmatch(organisation_id: int, account_id: int, match_id: int) -> Response:
    done = _write("reconciliation.unmatch", organisation_id, {"match_id": match_id},
                  lambda session_, by: matches.unmatch(session_, organisation_id, match_id, by))
    if done is not None:
        flash(_("The match is undone: its lines and entries are unmatched again."), "notice")
    return _back(organisation_id, account_id)


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/lines/<int:line_id>/entry", methods=["POST"])
@needs(Need.ORG_ADMIN)
def entry_from_line(organisation_id: int, account_id: int, line_id: int) -> Response:
    form = request.form
    made = matches.FromLine(kind=form.get("kind", ""), fund_id=int(form.get("fund_id") or 0),
                            account_id=int(form["account_id"]) if (form.get("account_id") or "").isdigit() else None,
                            description=(form.get("description") or "")[:500])
    done = _write("reconciliation.entry_from_line", organisation_id,
                  {"line_id": line_id, "kind": made.kind, "fund_id": made.fund_id, "account_id": made.account_id},
                  lambda session_, by: matches.entry_from_line(session_, organisation_id, line_id, made, by))
    if done is not None:
        flash(_("Recorded in the books and matched to its line."), "notice")
    return _back(organisation_id, account_id)


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/report")
@needs(Need.ORG_READ)
def report(organisation_id: int, account_id: int) -> Response:
    """The reconciliation report as a page to read or print (a closed month's: as it was frozen)."""
    found, start, end = _report_or_refusal(organisation_id, account_id)
    if isinstance(found, Response):
        return found
    lookup = read_session()
    return render_page("manage/report.html", money=money, report=found, start=start, end=end,
                       organisation=get_organisation(lookup, organisation_id),
                       account=get_account(lookup, organisation_id, account_id), csrf=generate_csrf())


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/report.csv")
@needs(Need.ORG_READ)
def report_csv(organisation_id: int, account_id: int) -> Response:
    """The same report as the API's CSV: one table."""
    found, start, end = _report_or_refusal(organisation_id, account_id)
    if isinstance(found, Response):
        return found
    return csv_response(report_rows(found), REPORT_COLUMNS, f"reconciliation-{account_id}-{start}-{end}")


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/report.pdf")
@needs(Need.ORG_READ)
def report_pdf(organisation_id: int, account_id: int) -> Response:
    """The same report as the API's PDF."""
    found, start, end = _report_or_refusal(organisation_id, account_id)
    if isinstance(found, Response):
        return found
    return Response(reconciliation_pdf.render(found), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="reconciliation-{account_id}-{start}-{end}.pdf"'})


def _report_or_refusal(organisation_id: int, account_id: int):
    """The period's report (a whole closed month's: as it was frozen) and the period; or the page that says why
    not."""
    try:
        start, end = _period(account_id)
        return closes.read_report(read_session(), organisation_id, account_id, start, end), start, end
    except NotFound:
        return _not_found(), None, None
    except InvalidInput as refusal:
        return render_page("manage/message.html", status=422, message=_refusal_text(refusal)), None, None


@blp.route("/o/<int:organisation_id>/accounts/<int:account_id>/close", methods=["POST"])
@needs(Need.ORG_ADMIN)
def close_month(organisation_id: int, account_id: int) -> Response:
    """The month closed as reconciled: the ledger's month closed, its report frozen (refused unless it balances)."""
    try:
        year, month = (int(part) for part in request.form.get("month", "").split("-"))
    except ValueError:
        flash(_refusal_text(InvalidInput("must be a month, YYYY-MM", field="month")), "error")
        return _back(organisation_id, account_id)
    done = _write("reconciliation.close", organisation_id, {"account_id": account_id, "year": year, "month": month},
                  lambda session_, by: closes.close_reconciled_month(session_, organisation_id, account_id, year,
                                                                      month, by))
    if done is None:
        return _back(organisation_id, account_id)
    label = f"{year}-{month:02d}"  # (outside the call: Babel's extractor reads only plain arguments)
    flash(_("%(month)s is closed: its report is frozen as it stands.", month=label), "notice")
    return _back(organisation_id, account_id, {"start": done.start.isoformat(), "end": done.end.isoformat()})
