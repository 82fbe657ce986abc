"""`flask ledger …` (migrate, load the demo, seal, verify), `flask users …` (create an administrator, disable a
user), `flask tokens …` (issue, revoke), `flask stripe replay` (events the webhook missed), `flask worker` (Stripe's
events from the Redis queue), `flask mail send-pending` (confirmation emails still owed) and `flask receipts …`
(annual receipts, receipts' emails). Every write made
here is in the audit log, as the operator's."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from api.edge import audit
from api.edge.channels import stripe_account
from api.edge.jobs import work
from api.edge.mail import send_owed_confirmations
from api.edge.receipt_mail import send_due_receipts, verify_address
from ledger.access.tokens import issue_token, revoke_token
from ledger.access.users import create_user, disable_user, find_user_by_email
from ledger.books.integrity import seal_pending, verify
from ledger.books.organisations import get_organisation
from ledger.core.errors import LedgerError
from ledger.core.money import Money
from ledger.db.schema import current_revision, migrate
from ledger.demo import DEMO_PASSWORD, DEMO_PEOPLE, load_demo_if_empty
from ledger.payments.stripe_channel import events_since, replay
from ledger.reconciliation import closes, imports, matches, payouts, statements
from ledger.reports import publishing
from receipts import documents
from receipts import register as receipt_register
from receipts.annual import issue_annual


def _database():
    return current_app.extensions["ledger_db"]


ledger_group = AppGroup("ledger", help="Maintain the ledger's database.")


@ledger_group.command("migrate", help="Upgrade the schema to the newest Alembic revision.")
def migrate_command() -> None:
    engine = _database().engine
    before = current_revision(engine)
    migrate(engine)
    after = current_revision(engine)
    click.echo(f"schema is up to date (revision {after})" if before == after else
               f"schema migrated from {f'revision {before}' if before else 'an empty database'} to revision {after}")


@ledger_group.command("load-demo", help="Load the demo foundation when the database is empty.")
def load_demo_command() -> None:
    organisation_id = load_demo_if_empty(_database())
    if organisation_id is None:
        _box(["The database already holds data: the demo was not loaded again, and its tokens were shown when "
              "it was.", "A new token for a demo person (password " + DEMO_PASSWORD + "):",
              f"  curl -X POST {_site()}/api/v1/tokens -H 'Content-Type: application/json' \\",
              f"       -d '{{\"email\": \"{DEMO_PEOPLE[-1][0]}\", \"password\": \"{DEMO_PASSWORD}\"}}'",
              "or: .venv/bin/flask --app wsgi tokens create --email " + DEMO_PEOPLE[-1][0]])
        return
    lines = [f"The demo is organisation {organisation_id}. Its people (password {DEMO_PASSWORD}) and their API "
             "tokens, shown this once:"]
    for email, role, _funds in DEMO_PEOPLE:
        token = _database().write(lambda session, email=email: issue_token(
            session, find_user_by_email(session, email).id, "demo", 30))[0]
        lines.append(f"  {role:<13} {email:<36} {token}")
    lines += ["Try: curl -H \"Authorization: Bearer <a token>\" "
              f"{_site()}/api/v1/organisations/{organisation_id}/trial-balance",
              f"The API's documentation: {_site()}/api/docs/", *_demo_receipts(organisation_id)]
    _box(lines)


def _demo_receipts(organisation_id: int) -> list[str]:
    """Two of the demo's receipts to open: a Chinese one as issued, and one the donor asked for in English (a
    replacement, as a manager makes it through the API); each for gifts the demo's published report holds, so that
    the verification page's inclusion proof has something to prove."""
    app = current_app._get_current_object()

    def reported(session, receipt) -> bool:
        return all(publishing.reports_covering(session, organisation_id, donation.fund_id, donation.received_on)
                   for _line, donation in receipt_register.lines_of(session, receipt.id))

    def english(session):
        listed = [receipt for receipt in receipt_register.list_receipts(
            session, organisation_id, receipt_register.ReceiptFilter(), after=None, limit=40).items
            if receipt_register.receipt_status(session, receipt)[0] == "issued" and reported(session, receipt)][:2]
        if len(listed) < 2:
            return []
        replaced = receipt_register.replace_receipt(session, listed[1], reason="the donor asked for English",
                                                    replaced_by="demo", language="en")
        return [listed[0], replaced]

    shown = _database().write(english)
    return [f"A receipt in {name}, checked by anyone: {verify_address(app, receipt)}"
            for name, receipt in zip(("Chinese", "English"), shown, strict=False)] + \
        ([f"The English one's PDF (a copy): curl -H \"Authorization: Bearer <the org_admin token>\" -o receipt.pdf "
          f"{_site()}/api/v1/organisations/{organisation_id}/receipts/{shown[1].id}/pdf"] if shown else [])


def _site() -> str:
    """Where the demo is served, as the set-up's banner names it (``FUNDLEDGER_PUBLIC_URL``; `make run` sets it from
    its HOST and PORT)."""
    return current_app.config["PUBLIC_URL"].rstrip("/")


def _box(lines: list[str]) -> None:
    """Lines a newcomer must not miss, between two heavy rules, after everything the set-up printed before. No
    side borders: the tokens and commands must copy cleanly."""
    rule = "━" * max(len(line) for line in lines)
    click.secho("\n".join([rule, *lines, rule]), bold=True)


@ledger_group.command("setup", help="Migrate, then load the demo if the database is empty.")
@click.pass_context
def setup_command(context: click.Context) -> None:
    context.invoke(migrate_command)
    context.invoke(load_demo_command)


@ledger_group.command("seal", help="Seal every committed entry not sealed yet.")
def seal_command() -> None:
    click.echo(f"sealed {seal_pending(_database())} batch(es)")


@ledger_group.command("verify", help="Recompute every cached total and re-hash every sealed batch.")
@click.option("--organisation", "organisation_id", type=int, default=None, help="Only this organisation.")
def verify_command(organisation_id: int | None) -> None:
    with _database().read() as session:
        problems = verify(session, organisation_id)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(f"integrity check failed: {len(problems)} problem(s)")
    click.echo("ledger verified: every cached total matches its postings, every sealed batch its hash")


def _audit(session, action: str, details: dict) -> None:
    """Writes made from the command line are in the audit log too, as made by the operator at the console."""
    audit.record(session, user_id=None, organisation_id=None, remote_addr="console", method="CLI",
                 path=f"flask {action}", action=action, status_code=0, details=details)


users_group = AppGroup("users", help="Manage the people who sign in.")
tokens_group = AppGroup("tokens", help="Manage API tokens.")


@users_group.command("create-admin", help="Create a platform administrator.")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
def create_admin_command(email: str, password: str, display_name: str) -> None:
    def create(session):
        user = create_user(session, email=email, password=password, display_name=display_name,
                           platform_admin=True)
        _audit(session, "user.create-admin", {"email": user.email, "user_id": user.id})
        return user

    user = _database().write(create)
    click.echo(f"created platform administrator {user.email} (user {user.id})")


@users_group.command("disable", help="Switch a user off: their password and every token stop working at once.")
@click.option("--email", required=True)
def disable_user_command(email: str) -> None:
    def disable(session):
        user = disable_user(session, email)
        _audit(session, "user.disable", {"email": user.email, "user_id": user.id})
        return user

    user = _database().write(disable)
    click.echo(f"user {user.email} (user {user.id}) is disabled")


@tokens_group.command("create", help="Issue an API token for a user; it is shown once.")
@click.option("--email", required=True)
@click.option("--name", default="cli", help="What the token is for.")
@click.option("--days", default=90, show_default=True, type=int)
def create_token_command(email: str, name: str, days: int) -> None:
    def issue(session):
        user = find_user_by_email(session, email)
        if user is None:
            raise click.ClickException(f"no user has the email {email}")
        token, row = issue_token(session, user.id, name, days)
        _audit(session, "token.issue", {"email": user.email, "prefix": row.prefix, "name": name, "days": days})
        return token, row

    token, row = _database().write(issue)
    click.echo(token)
    click.echo(f"token {row.prefix} expires {row.expires_at:%Y-%m-%d}; it will not be shown again", err=True)


@tokens_group.command("revoke", help="Revoke a token by its prefix (the part after fl_, or fl_<prefix>, or the "
                                        "whole token).")
@click.argument("prefix")
def revoke_token_command(prefix: str) -> None:
    prefix = prefix.split("_")[1] if prefix.startswith("fl_") else prefix  # (a prefix is hex: no "_" in it)

    def revoke(session):
        revoke_token(session, prefix)
        _audit(session, "token.revoke", {"prefix": prefix})

    try:
        _database().write(revoke)
    except LedgerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"token {prefix} revoked")


stripe_group = AppGroup("stripe", help="The Stripe channel.")


@stripe_group.command("replay", help="Fetch Stripe's events since a date and apply those the webhook missed.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="The first day (UTC) whose events to fetch; Stripe keeps 30 days of them.")
def replay_command(since) -> None:
    account = stripe_account()
    if account is None:
        raise click.UsageError("no Stripe account is configured: set STRIPE_SECRET_KEY")
    events = events_since(account, since.replace(tzinfo=dt.UTC))
    click.echo(f"{len(events)} event(s) at Stripe since {since:%Y-%m-%d}")
    with click.progressbar(events, label="applying", show_pos=True) as bar:
        counts = replay(_database(), account, bar)
    _database().write(lambda session: _audit(session, "stripe.replay", {"since": f"{since:%Y-%m-%d}", **counts}))
    click.echo(", ".join(f"{name} {counts[name]}" for name in ("stored", "known", "applied", "ignored", "received",
                                                                 "failed")))
    if counts["failed"]:
        raise SystemExit(f"{counts['failed']} event(s) could not be applied: see the log; they are kept as failed")


mail_group = AppGroup("mail", help="The donors' emails.")


@mail_group.command("send-pending", help="Send every confirmation email still owed (one that failed is retried).")
def send_pending_command() -> None:
    if not current_app.config.get("SMTP_HOST"):
        raise click.UsageError("no mail server is configured: set FUNDLEDGER_SMTP_HOST")
    click.echo(f"{send_owed_confirmations(current_app._get_current_object())} email(s) sent")


@click.command("worker", help="Apply Stripe's events from the Redis queue (REDIS_URL), until stopped.")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@with_appcontext
def worker_command(burst: bool) -> None:
    try:
        work(current_app._get_current_object(), burst=burst)
    except RuntimeError as error:
        raise click.UsageError(str(error)) from None


receipts_group = AppGroup("receipts", help="Donation receipts.")


@receipts_group.command("issue-annual", help="Issue each donor's receipt for the year's gifts no receipt covers.")
@click.option("--organisation", "organisation_id", type=int, required=True)
@click.option("--year", type=click.IntRange(2000, 2200), required=True)
@click.option("--processes", type=click.IntRange(1, 64), default=min(os.cpu_count() or 1, 4), show_default=True,
              help="Processes rendering the PDFs.")
def issue_annual_command(organisation_id: int, year: int, processes: int) -> None:
    app = current_app._get_current_object()
    with _database().read() as session:
        get_organisation(session, organisation_id)
    with click.progressbar(length=0, label="receipts") as bar:
        def batches(chunks):
            bar.length = len(chunks)
            for chunk in chunks:
                yield chunk
                bar.update(1)

        summary = issue_annual(_database(), organisation_id, year, created_by="console", batches=batches,
                               address_of=functools.partial(documents.verify_address, app.config["PUBLIC_URL"],
                                                            app.config["RECEIPT_SIGNING_SECRET"].encode()),
                               render_processes=processes)
    totals = ", ".join(str(Money(amount, currency)) for currency, amount in sorted(summary.amounts.items()))
    _database().write(lambda session: _audit(session, "receipts.issue-annual", {
        "organisation_id": organisation_id, "year": year, "receipts": summary.receipts}))
    click.echo(f"{summary.receipts} receipt(s) issued to {summary.donors} donor(s) for {year}"
               + (f": {totals}" if totals else "; every gift of the year was receipted already"))
    sent = send_due_receipts(app)
    if sent:
        click.echo(f"{sent} receipt email(s) sent")


@receipts_group.command("send", help="Email every receipt due to its donor (a failed one is tried again).")
@click.option("--now", "skip_pauses", is_flag=True, help="Also those waiting after a failure.")
def send_receipts_command(skip_pauses: bool) -> None:
    if not current_app.config.get("SMTP_HOST"):
        raise click.UsageError("no mail server is configured: set FUNDLEDGER_SMTP_HOST")
    click.echo(f"{send_due_receipts(current_app._get_current_object(), skip_pauses=skip_pauses)} receipt email(s) "
               "sent")


reports_group = AppGroup("reports", help="Published reports.")


@reports_group.command("publish", help="Seal the books, then publish a period's report (or, with --correction, "
                                       "a corrected version of the one published).")
@click.option("--organisation", "organisation_id", type=int, required=True)
@click.option("--fund", "fund_id", type=int, default=None, help="A fund's report; the organisation's by default.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="The first day of a month.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="The last day of a month.")
@click.option("--correction", default="", help="更正说明: what this version corrects, and why.")
def publish_report_command(organisation_id: int, fund_id: int | None, start, end, correction: str) -> None:
    try:
        period = publishing.Period.of(start.date(), end.date(), dt.datetime.now(dt.UTC).date())
        seal_pending(_database())  # (the report names the seal of every entry written so far)
        report = _database().write(lambda session: publishing.publish(
            session, organisation_id, fund_id, period, published_by="console", correction_note=correction))
    except LedgerError as error:
        raise click.UsageError(str(error)) from error
    _database().write(lambda session: _audit(session, "reports.publish", {
        "organisation_id": organisation_id, "report_id": report.id, "version": report.version}))
    click.echo(f"report {report.id} (version {report.version}) published: {report.donation_count} gift(s), "
               f"Merkle root {report.merkle_root}, sealed through entry {report.sealed_through_entry_id}")


reconcile_group = AppGroup("reconcile", help="Bank statements and reconciliation.")


@reconcile_group.command("import", help="Import a bank statement (CSV, OFX or camt.053) for an account of money; "
                                        "lines already imported are not added again.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--organisation", "organisation_id", type=int, required=True)
@click.option("--account", "account_id", type=int, required=True, help="The chart's bank (or cash) account.")
@click.option("--format", "file_format", type=click.Choice(["csv", "ofx", "camt053"]), default=None,
              help="By the file's extension when left out (.csv, .ofx/.qfx, .xml).")
@click.option("--mapping", default="cn_bank", show_default=True,
              help="A CSV's layout: a preset (cn_bank, generic) or a JSON file of column names.")
def import_statement_command(file: Path, organisation_id: int, account_id: int, file_format: str | None,
                             mapping: str) -> None:
    file_format = file_format or {".csv": "csv", ".ofx": "ofx", ".qfx": "ofx", ".xml": "camt053"}.get(
        file.suffix.lower())
    if file_format is None:
        raise click.UsageError("say the file's --format (csv, ofx or camt053)")
    layout = _mapping(mapping) if file_format == "csv" else None
    with click.progressbar(length=0, label="lines written", show_pos=True) as bar:
        try:
            done = _database().write(lambda session: imports.import_statement(
                session, organisation_id, account_id, filename=file.name, content=file.read_bytes(),
                file_format=file_format, mapping=layout, imported_by="console",
                progress=lambda count: bar.update(count - bar.pos)), attempts=1)
        except LedgerError as error:
            raise click.UsageError(str(error)) from error
    _database().write(lambda session: _audit(session, "reconcile.import", {
        "organisation_id": organisation_id, "statement_id": done.statement.id, "new_lines": done.new_lines}))
    click.echo(f"statement {done.statement.id}: {done.new_lines} new line(s), {done.known_lines} already imported "
               f"({done.statement.period_start} – {done.statement.period_end})")


@reconcile_group.command("auto-match", help="Match the account's statement lines to its entries wherever the match "
                                            "is unambiguous.")
@click.option("--organisation", "organisation_id", type=int, required=True)
@click.option("--account", "account_id", type=int, required=True)
def auto_match_command(organisation_id: int, account_id: int) -> None:
    try:
        done = _database().write(lambda session: matches.auto_match(session, organisation_id, account_id, "console"),
                                 attempts=1)
    except LedgerError as error:
        raise click.UsageError(str(error)) from error
    _database().write(lambda session: _audit(session, "reconcile.auto-match", {
        "organisation_id": organisation_id, "account_id": account_id, "matches": done.matches}))
    rules = ", ".join(f"{count} {rule.replace('_', ' ')}" for rule, count in sorted(done.by_rule.items()))
    click.echo(f"{done.matches} match(es): {done.lines} line(s) to {done.entries} entr(ies)"
               + (f" ({rules})" if rules else ""))


@reconcile_group.command("close", help="Close an account's month as reconciled: the ledger's month is closed and "
                                       "its reconciliation report frozen (refused while anything is unexplained).")
@click.option("--organisation", "organisation_id", type=int, required=True)
@click.option("--account", "account_id", type=int, required=True)
@click.option("--month", type=click.DateTime(["%Y-%m"]), required=True, help="The month, as 2026-10.")
def close_month_command(organisation_id: int, account_id: int, month: dt.datetime) -> None:
    try:
        frozen = _database().write(lambda session: closes.close_reconciled_month(
            session, organisation_id, account_id, month.year, month.month, "console"))
    except LedgerError as error:
        raise click.UsageError(str(error)) from error
    _database().write(lambda session: _audit(session, "reconcile.close", {
        "organisation_id": organisation_id, "account_id": account_id, "month": f"{month:%Y-%m}",
        "version": frozen.version, "sha256": frozen.sha256}))
    click.echo(f"{month:%Y-%m} closed as reconciled (version {frozen.version}, closed at "
               f"{frozen.closed_at.isoformat(timespec='seconds')}): sha256 {frozen.sha256}")


@reconcile_group.command("payout", help="Tie a Stripe payout's balance transactions to the organisation's donations "
                                        "and its amount to the entries posted; exit code 1 when it does not "
                                        "reconcile.")
@click.argument("payout_id")
@click.option("--organisation", "organisation_id", type=int, required=True)
def payout_command(payout_id: str, organisation_id: int) -> None:
    account = stripe_account()
    if account is None:
        raise click.UsageError("no Stripe account is configured: set STRIPE_SECRET_KEY")
    try:
        with _database().read() as session:
            get_organisation(session, organisation_id)
            found = payouts.payout_tie(session, account, organisation_id, payout_id)
    except LedgerError as error:
        raise click.UsageError(str(error)) from error
    payout = found.payout
    click.echo(f"payout {payout.id}: {Money(payout.amount_minor, payout.currency)}, {payout.status}, arriving "
               f"{payout.arrival_date} (amounts below in minor units)")
    table = [("transaction", "type", "donation", "Stripe net", "ledger net", "difference")] + [
        (row.transaction_id, row.type, str(row.donation_id or "-"), str(row.stripe_net_minor),
         "-" if row.ledger_net_minor is None else str(row.ledger_net_minor), str(row.difference_minor))
        for row in found.rows]
    widths = [max(len(cells[column]) for cells in table) for column in range(len(table[0]))]
    for cells in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
    click.echo(f"Stripe's nets {found.transactions_net_minor}, the ledger's {found.tied_net_minor}, posted "
               f"{found.posted_minor}")
    for difference in found.differences:
        click.echo(f"difference: {difference.kind} {difference.amount_minor}"
                   + (f" ({difference.transaction_id})" if difference.transaction_id else ""))
    click.echo("reconciled" if found.reconciled else f"does not reconcile: {len(found.differences)} difference(s)")
    if not found.reconciled:
        raise SystemExit(1)


def _mapping(name: str) -> statements.CsvMapping:
    if name in statements.PRESETS:
        return statements.PRESETS[name]
    try:
        return statements.CsvMapping(**json.loads(Path(name).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as error:
        raise click.UsageError(f"--mapping: a preset ({', '.join(statements.PRESETS)}) or a JSON file of "
                               f"CsvMapping's fields ({error})") from error


def register(app: Flask) -> None:
    for group in (ledger_group, users_group, tokens_group, stripe_group, mail_group, receipts_group, reports_group,
                  reconcile_group):
        app.cli.add_command(group)
    app.cli.add_command(worker_command)
