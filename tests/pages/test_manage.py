"""The manager's reconciliation screen through the test client, on both engines: signing in with the API's users
and passwords (a session cookie holding a day's token, revoked on signing out), CSRF on every form, the roles of the
API's own reconciliation routes, and each action (import, automatic matching, a suggestion accepted, a match by hand
undone, a line recorded in the books) doing what the API's does, audited, with refusals shown and nothing written."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from api.edge.tables import AuditRecord
from ledger.db.models import ApiToken, ReconciliationMatch, StatementLine, User
from tests.api.support import PASSWORD, snapshot
from tests.reconciliation.test_imports import account
from tests.reconciliation.test_matching import STATEMENT, gift

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def email_of(world, role: str) -> str:
    with world.db.read() as session:
        return session.get(User, world.users[role]).email


def signed_in(world, role: str):
    """A browser-like client signed in as ``role`` through the sign-in form."""
    client = world.app.test_client()
    form = client.get("/manage/sign-in?lang=en")
    answer = client.post("/manage/sign-in?lang=en", data={
        "email": email_of(world, role), "password": PASSWORD, "csrf_token": CSRF.search(form.text).group(1)})
    assert answer.status_code == 303, answer.text
    return client


def token_of(client, path: str) -> str:
    return CSRF.search(client.get(path).text).group(1)


def screen_path(world, bank: int, **period) -> str:
    query = "&".join(f"{name}={value}" for name, value in {"lang": "en", **period}.items())
    return f"/manage/o/{world.org}/accounts/{bank}?{query}"


def post(client, world, bank: int, action: str, data: dict, **options):
    data = {"csrf_token": token_of(client, screen_path(world, bank)), "start": "2026-10-01", "end": "2026-10-31",
            **data}
    return client.post(f"/manage/o/{world.org}/accounts/{bank}/{action}?lang=en", data=data, **options)


def audited(world, action: str) -> int:
    with world.db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == action, AuditRecord.organisation_id == world.org))


def imported(client, world, bank: int):
    world.call("org_admin", "PUT", world.url("/statement-mappings/plain"), {
        "date": "date", "amount": "amount", "reference": "reference", "counterparty": "counterparty",
        "bank_id": "id", "balance": "balance"})
    return post(client, world, bank, "import", {"format": "csv", "mapping": "plain",
                                               "file": (io.BytesIO(STATEMENT.encode()), "oct.csv")},
                content_type="multipart/form-data")


def test_a_page_asks_for_sign_in_and_comes_back_to_it_but_never_to_another_site(world):
    client = world.app.test_client()
    bank = account(world, "1002")

    asked = client.get(screen_path(world, bank))
    form = client.get(asked.headers["Location"])
    wrong = client.post(asked.headers["Location"], data={
        "email": email_of(world, "org_admin"), "password": "not it", "csrf_token": CSRF.search(form.text).group(1)})
    right = client.post(asked.headers["Location"], data={
        "email": email_of(world, "org_admin"), "password": PASSWORD, "csrf_token": CSRF.search(form.text).group(1)})
    elsewhere = signed_in(world, "org_admin").post("/manage/sign-in?next=https://evil.example/manage/x", data={
        "email": email_of(world, "org_admin"), "password": PASSWORD,
        "csrf_token": CSRF.search(form.text).group(1)})

    assert asked.status_code == 303 and "/manage/sign-in" in asked.headers["Location"]
    assert wrong.status_code == 401 and "The email or the password is wrong." in wrong.text
    assert right.status_code == 303 and right.headers["Location"] == screen_path(world, bank)
    assert client.get(screen_path(world, bank)).status_code == 200
    assert elsewhere.status_code == 400  # (another client's CSRF token: this session's is its own)
    assert "evil" not in (signed_in(world, "org_admin").get("/manage/").headers.get("Location") or "")
    with world.db.read() as session:
        refused = session.scalars(select(AuditRecord).where(AuditRecord.path == "/manage/sign-in",
                                                            AuditRecord.status_code == 401)).all()
    assert len(refused) == 1 and "not it" not in refused[0].details


def test_next_may_only_lead_back_into_the_screen(world):
    client = world.app.test_client()
    form = client.get("/manage/sign-in")
    answer = client.post("/manage/sign-in?next=//evil.example/manage/", data={
        "email": email_of(world, "org_admin"), "password": PASSWORD, "csrf_token": CSRF.search(form.text).group(1)})

    assert answer.status_code == 303 and answer.headers["Location"].startswith("/manage/?")


def test_signing_out_revokes_the_sessions_token(world):
    client = signed_in(world, "org_admin")
    bank = account(world, "1002")
    with world.db.read() as session:
        live = session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.user_id == world.users["org_admin"], ApiToken.revoked_at.is_(None)))
    cookie = client.get_cookie("session").value

    out = client.post("/manage/sign-out", data={"csrf_token": token_of(client, "/manage/")})
    replayed = world.app.test_client()
    replayed.set_cookie("session", cookie)

    assert out.status_code == 303
    assert replayed.get(screen_path(world, bank)).status_code == 303  # the stolen cookie no longer signs anyone in
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.user_id == world.users["org_admin"], ApiToken.revoked_at.is_(None))) == live - 1


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(world):
    client = signed_in(world, "org_admin")
    bank = account(world, "1002")
    before = snapshot(world.db)

    answer = client.post(f"/manage/o/{world.org}/accounts/{bank}/auto-match?lang=en", data={"start": "2026-10-01"})

    assert answer.status_code == 400 and "This form has expired" in answer.text
    assert snapshot(world.db) == before and audited(world, "reconciliation.auto_match") == 0


def test_auditors_read_without_buttons_fund_managers_are_refused_and_strangers_see_nothing(world):
    bank = account(world, "1002")
    auditor, manager, stranger = (signed_in(world, role) for role in ("auditor", "fund_manager", "other_admin"))

    read = auditor.get(screen_path(world, bank))
    write = post(auditor, world, bank, "auto-match", {})

    assert read.status_code == 200 and "Match automatically" not in read.text and "Import" not in read.text
    assert write.status_code == 403 and audited(world, "reconciliation.auto_match") == 0
    assert manager.get(screen_path(world, bank)).status_code == 403
    assert stranger.get(screen_path(world, bank)).status_code == 403
    assert f"/manage/o/{world.org}/" not in stranger.get("/manage/?lang=en").text


def test_import_match_accept_record_and_unmatch_from_the_screen_until_the_report_balances(world):
    bank = account(world, "1002")
    entries = [gift(world, amount, day) for amount, day in (
        (100_000, "2026-10-03"), (880_000, "2026-10-07"), (145_030, "2026-10-20"), (100_000, "2026-10-20"),
        (50_000, "2026-10-25"))]
    client = signed_in(world, "org_admin")

    first = imported(client, world, bank)
    screen = client.get(first.headers["Location"])
    assert "Statement imported: 4 new line(s), 0 already imported." in screen.text
    # before any match each side lists everything: the identity holds, with every line still to explain
    assert 'id="status"' in screen.text and screen.text.count('id="line-') == 4

    # the ¥1,000.00 line's suggestion accepted, by its own form's fields
    suggestion = re.search(r'<form method="post" action="[^"]*/match\?lang=en" class="suggestion">(.*?)</form>',
                           screen.text, re.S).group(1)
    chosen = {"line_ids": re.findall(r'name="line_ids" value="(\d+)"', suggestion),
              "entry_ids": re.findall(r'name="entry_ids" value="(\d+)"', suggestion)}
    accepted = post(client, world, bank, "match", chosen)
    auto = post(client, world, bank, "auto-match", {})
    with world.db.read() as session:
        fee = session.scalars(select(StatementLine.id).where(StatementLine.account_id == bank,
                                                              StatementLine.amount_minor == -1_500)).one()
        expense = next(row["id"] for row in world.call("auditor", "GET", world.url("/accounts")).json
                       if row["type"] == "expense")
    recorded = post(client, world, bank, f"lines/{fee}/entry", {
        "kind": "entry", "fund_id": world.fund, "account_id": expense, "description": "手续费 bank fee"})
    shown = client.get(recorded.headers["Location"])

    assert accepted.status_code == 303 and auto.status_code == 303 and recorded.status_code == 303
    assert "Recorded in the books and matched to its line." in shown.text
    assert "Reconciled:" in shown.text and f"#{entries[4]}" in shown.text  # the gift not yet banked, still listed
    assert 'id="line-' not in shown.text and "Every line of the period is matched." in shown.text
    report = client.get(f"/manage/o/{world.org}/accounts/{bank}/report?lang=en&start=2026-10-01&end=2026-10-31")
    csv = client.get(f"/manage/o/{world.org}/accounts/{bank}/report.csv?start=2026-10-01&end=2026-10-31")
    assert "Reconciled:" in report.text and "summary,unexplained_minor,,,0," in csv.text
    for action in ("statement.import", "reconciliation.match", "reconciliation.auto_match",
                   "reconciliation.entry_from_line"):
        assert audited(world, action) == 1, action

    with world.db.read() as session:
        kept = session.scalars(select(ReconciliationMatch.id).where(ReconciliationMatch.account_id == bank,
                                                                 ReconciliationMatch.rule == "manual")).one()
    undone = post(client, world, bank, f"matches/{kept}/unmatch", {})
    again = client.get(undone.headers["Location"])
    assert "The match is undone" in again.text and "Reconciled:" in again.text  # still explained: both listed
    assert again.text.count('id="line-') == 1
    assert audited(world, "reconciliation.unmatch") == 1


def test_a_refused_action_is_shown_and_writes_nothing(world):
    bank = account(world, "1002")
    gift(world, 50_000, "2026-10-25")
    client = signed_in(world, "org_admin")
    imported(client, world, bank)
    with world.db.read() as session:
        line = session.scalars(select(StatementLine.id).where(StatementLine.account_id == bank,
                                                              StatementLine.amount_minor == -1_500)).one()
    before = snapshot(world.db)

    answer = post(client, world, bank, "match", {"line_ids": [line], "entry_ids": [1]})
    shown = client.get(answer.headers["Location"])

    assert answer.status_code == 303 and "Refused (entry_ids)" in shown.text
    assert snapshot(world.db) == before
    with world.db.read() as session:
        refused = session.scalars(select(AuditRecord).where(AuditRecord.action == "manage.match.post",
                                                            AuditRecord.organisation_id == world.org)).all()
    assert [record.status_code for record in refused] == [409]


def test_a_balanced_month_is_closed_from_the_screen_and_its_report_stays_as_frozen(world):
    bank = account(world, "1002")
    for amount, day in ((100_000, "2026-10-03"), (880_000, "2026-10-07"), (245_030, "2026-10-20")):
        gift(world, amount, day)
    client = signed_in(world, "org_admin")
    imported(client, world, bank)
    post(client, world, bank, "auto-match", {})
    with world.db.read() as session:
        fee = session.scalars(select(StatementLine.id).where(StatementLine.account_id == bank,
                                                             StatementLine.amount_minor == -1_500)).one()
    expense = next(row["id"] for row in world.call("auditor", "GET", world.url("/accounts")).json
                   if row["type"] == "expense")
    post(client, world, bank, f"lines/{fee}/entry", {"kind": "entry", "fund_id": world.fund, "account_id": expense})
    month = {"start": "2026-10-01", "end": "2026-10-31"}

    early = post(client, world, bank, "close", {"month": "2026-13"})
    refused = client.get(early.headers["Location"]).text
    closed = post(client, world, bank, "close", {"month": "2026-10"})
    page = client.get(closed.headers["Location"])
    pdf = client.get(f"/manage/o/{world.org}/accounts/{bank}/report.pdf?start=2026-10-01&end=2026-10-31")
    with world.db.read() as session:
        kept = session.scalars(select(ReconciliationMatch.id).where(ReconciliationMatch.account_id == bank,
                                                                    ReconciliationMatch.unmatched_at.is_(None))).first()
    post(client, world, bank, f"matches/{kept}/unmatch", {})
    later = client.get(screen_path(world, bank, **month))
    report = world.call("auditor", "GET", world.url(f"/reconciliation/report?account_id={bank}&start=2026-10-01"
                                                    "&end=2026-10-31")).json

    assert "Refused (month)" in refused
    assert "2026-10 is closed: its report is frozen as it stands." in page.text and 'id="frozen"' in page.text
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert 'id="frozen"' in later.text and report["frozen"] is True and report["unmatched_lines"] == []
    assert audited(world, "reconciliation.close") == 1
    assert signed_in(world, "auditor").get(
        f"/manage/o/{world.org}/accounts/{bank}/report.pdf?start=2026-10-01&end=2026-10-31").status_code == 200
    assert post(signed_in(world, "auditor"), world, bank, "close", {"month": "2026-10"}).status_code == 403
