"""The books themselves: entries (list, get, reverse), transfers between funds, trial balance, a fund's
balances and an account's statement. Lists and statements also answer as CSV (`Accept: text/csv`)."""

from __future__ import annotations

import datetime as dt

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, post_load, validate

from api.edge.auth import authorize_any_fund, authorize_funds, authorize_report, listed_funds, requires
from api.edge.session import database, read_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import (
    CSV_DOC,
    MAX_ID,
    MAX_PAGE_SIZE,
    Blueprint,
    MinorUnits,
    PageQuerySchema,
    csv_response,
    documents_problems,
    every_row,
    object_id,
    page_schema,
    storable,
    text,
    wants_csv,
)
from ledger.access.policy import Need
from ledger.books import adjustments, balances, entries, transfers
from ledger.books.balances import MAX_STATEMENT_PAGE, StatementCursor
from ledger.books.integrity import chain_head
from ledger.core.chart import Side
from ledger.core.vocabulary import EntryKind

blp = Blueprint("journal", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Entries, transfers, trial balance, balances, statements")


class PostingSchema(Schema):
    fund_id = fields.Integer(required=True)
    debit_account_id = fields.Integer(required=True)
    credit_account_id = fields.Integer(required=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)


class EntrySchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    effective_date = fields.Date(required=True)
    posted_at = fields.DateTime(required=True)
    description = fields.String(required=True)
    recorded_by = fields.String(required=True)
    reverses_entry_id = fields.Integer(allow_none=True, required=True)
    postings = fields.List(fields.Nested(PostingSchema), required=True)


class EntryQuerySchema(PageQuerySchema):
    fund_id = object_id()
    kind = fields.String(validate=[validate.Length(max=40), storable])
    date_from = fields.Date()
    date_to = fields.Date()


class ReversalInSchema(Schema):
    effective_date = fields.Date(metadata={"description": "The reversal's date; the original's when left out"})
    description = fields.String(validate=[validate.Length(max=500), storable])


class LineInSchema(Schema):
    account_id = object_id(required=True, strict=True)
    fund_id = object_id(required=True, strict=True)
    side = fields.String(required=True, validate=validate.OneOf(list(Side)))
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))

    @post_load
    def as_line(self, data: dict, **_kwargs) -> adjustments.Line:
        return adjustments.Line(**data)


class ManualEntryInSchema(Schema):
    effective_date = fields.Date(required=True)
    description = text(500, required=True)
    lines = fields.List(fields.Nested(LineInSchema), required=True,
                        validate=validate.Length(min=2, max=adjustments.MAX_LINES), metadata={
                            "description": "Debit and credit lines; per fund and currency debits equal credits"})


class ReleaseInSchema(Schema):
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    effective_date = fields.Date(required=True)
    description = text(500)


class TransferInSchema(Schema):
    from_fund_id = object_id(required=True, strict=True)
    to_fund_id = object_id(required=True, strict=True)
    amount_minor = MinorUnits(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    effective_date = fields.Date(required=True)
    description = text(500)
    from_account_id = object_id(strict=True, allow_none=True, load_default=None, metadata={
        "description": "The bank account the money leaves, when not the bank role's default"})
    to_account_id = object_id(strict=True, allow_none=True, load_default=None, metadata={
        "description": "The bank account the money reaches, when not the bank role's default"})


class TrialBalanceQuerySchema(Schema):
    fund_id = object_id(metadata={"description": "Only this fund (every fund balances on its own)"})
    as_of = fields.Date(metadata={"description": "Balances at the end of this effective date"})


class TrialBalanceLineSchema(Schema):
    account_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True)
    normal_balance = fields.String(required=True)
    currency = fields.String(required=True)
    debits_minor = fields.Integer(required=True)
    credits_minor = fields.Integer(required=True)
    debit_balance_minor = fields.Integer(required=True)
    credit_balance_minor = fields.Integer(required=True)
    balance_minor = fields.Integer(required=True, metadata={"description": "On the account's normal side"})


class TotalsSchema(Schema):
    currency = fields.String(required=True)
    debit_balance_minor = fields.Integer(required=True)
    credit_balance_minor = fields.Integer(required=True)


class SealSchema(Schema):
    sequence_no = fields.Integer(required=True)
    batch_hash = fields.String(required=True)


class TrialBalanceSchema(Schema):
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(allow_none=True, required=True)
    as_of = fields.Date(allow_none=True, required=True)
    balanced = fields.Boolean(required=True)
    lines = fields.List(fields.Nested(TrialBalanceLineSchema), required=True)
    totals = fields.List(fields.Nested(TotalsSchema), required=True)
    sealed_through = fields.Nested(SealSchema, allow_none=True, required=True,
                                   metadata={"description": "The newest sealed batch of the ledger"})


class Cursor(fields.String):
    """A statement cursor, `YYYY-MM-DD.posting_id`: the last line of the page before."""

    def _deserialize(self, value, attr, data, **kwargs):
        text_value = super()._deserialize(value, attr, data, **kwargs)
        day, _, posting = text_value.partition(".")
        try:
            posting_id = int(posting)
            if not 0 <= posting_id <= MAX_ID:  # a larger id cannot reach the database (SQLite: OverflowError)
                raise ValueError(posting)
            return StatementCursor(dt.date.fromisoformat(day), posting_id)
        except ValueError:
            raise ValidationError("must be YYYY-MM-DD.posting_id, as next_after gave it") from None


def _cursor_text(page) -> str | None:
    """The statement's next cursor as ``Cursor`` reads it back: ``YYYY-MM-DD.posting_id``."""
    cursor = page.next_cursor
    return f"{cursor.effective_date.isoformat()}.{cursor.posting_id}" if cursor else None


class StatementQuerySchema(Schema):
    currency = fields.String(validate=[validate.Length(equal=3), storable],
                             metadata={"description": "The organisation's base currency when left out"})
    fund_id = object_id(metadata={"description": "Only this fund's postings"})
    date_from = fields.Date()
    date_to = fields.Date()
    after = Cursor()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_STATEMENT_PAGE))


class StatementLineSchema(Schema):
    posting_id = fields.Integer(required=True)
    entry_id = fields.Integer(required=True)
    effective_date = fields.Date(required=True)
    description = fields.String(required=True)
    fund_id = fields.Integer(required=True)
    debit_minor = fields.Integer(required=True)
    credit_minor = fields.Integer(required=True)
    balance_minor = fields.Integer(required=True)


class StatementSchema(Schema):
    account_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    fund_id = fields.Integer(allow_none=True, required=True)
    opening_balance_minor = fields.Integer(required=True)
    lines = fields.List(fields.Nested(StatementLineSchema), required=True)
    next_after = fields.Function(_cursor_text, allow_none=True, required=True,
                                 metadata={"type": "string", "nullable": True,
                                           "description": "Pass as `after` for the next page; null at the end"})


EntryPageSchema = page_schema(EntrySchema, "EntryPage")
ENTRY_CSV_COLUMNS = ["entry_id", "effective_date", "kind", "description", "posted_at", "recorded_by",
                     "reverses_entry_id", "fund_id", "debit_account_id", "credit_account_id", "amount_minor",
                     "currency"]


def _entries_csv(items: list) -> list[dict]:
    """One row per posting, the entry's fields repeated: what a spreadsheet wants."""
    rows = []
    for entry in EntrySchema(many=True).dump(items):
        for posting in entry["postings"]:
            rows.append({**entry, "entry_id": entry["id"], **posting})
    return rows


def _entry_list(query: dict, organisation_id: int, kind: str | None = None):
    fund_ids = listed_funds(organisation_id, query.get("fund_id"))

    def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
        return entries.list_entries(
            session, organisation_id, fund_ids=fund_ids, kind=kind or query.get("kind"),
            date_from=query.get("date_from"), date_to=query.get("date_to"), after=after, limit=limit)

    if wants_csv():
        return csv_response(every_row(fetch, query.get("after"), _entries_csv), ENTRY_CSV_COLUMNS, "entries")
    return fetch(read_session(), query.get("after"), query["limit"])


@blp.route("/entries")
class Entries(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(EntryQuerySchema(), location="query")
    @blp.response(200, EntryPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Entries in id order, filtered by fund, kind and effective dates; fund managers see the entries
        touching their funds. As CSV: one row per posting."""
        return _entry_list(query, organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(ManualEntryInSchema())
    @blp.response(201, EntrySchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("entry.create")
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Posts a manual journal entry (kind `journal`): debit and credit lines, equal per fund and currency, on
        the organisation's accounts, each account's limit kept; an accountant's work, so organisation admins
        only. Accounts that records keep (donation revenue, grants payable, processor clearing) are refused: that
        money moves through its gift, refund or grant. It is corrected by reversing it."""
        return adjustments.post_manual_entry(unit.session, organisation_id, adjustments.ManualEntry(**data),
                                             idempotency_key=unit.entry_key, recorded_by=unit.recorded_by)


@blp.route("/funds/<int:fund_id>/releases")
class FundReleases(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(ReleaseInSchema())
    @blp.response(201, EntrySchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("fund.release")
    def post(self, data, organisation_id: int, fund_id: int, unit: UnitOfWork):
        """Releases part of a restricted fund's net assets from restriction (kind `release_from_restriction`):
        the restriction is met. 409 `invalid_state` for a fund that is not restricted."""
        authorize_funds(organisation_id, [fund_id], write=True)
        return adjustments.release(unit.session, organisation_id, fund_id, idempotency_key=unit.entry_key,
                                   recorded_by=unit.recorded_by, **data)


@blp.route("/entries/<int:entry_id>")
class EntryItem(MethodView):
    @requires(Need.FUND_READ)
    @blp.response(200, EntrySchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int, entry_id: int):
        """One entry with its postings."""
        entry = entries.get_entry(read_session(), organisation_id, entry_id)
        authorize_any_fund(organisation_id, entry.fund_ids())
        return entry


@blp.route("/entries/<int:entry_id>/reversal")
class EntryReversal(MethodView):
    @requires(Need.FUND_WRITE)
    @blp.arguments(ReversalInSchema(), required=False)
    @blp.response(201, EntrySchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("entry.reverse")
    def post(self, data, organisation_id: int, entry_id: int, unit: UnitOfWork):
        """Posts the mirror image of an entry; both stay in the books. An entry is reversed once (409
        `entry_already_reversed`). Needs write rights on every fund it touches."""
        original = entries.get_entry(unit.session, organisation_id, entry_id)
        authorize_funds(organisation_id, original.fund_ids(), write=True)
        return entries.reverse_entry(unit.session, organisation_id, entry_id, idempotency_key=unit.entry_key,
                                     recorded_by=unit.recorded_by, effective_date=data.get("effective_date"),
                                     description=data.get("description"))


@blp.route("/transfers")
class Transfers(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(EntryQuerySchema(), location="query")
    @blp.response(200, EntryPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Transfers between funds (entries of kind `transfer`)."""
        return _entry_list(query, organisation_id, kind=EntryKind.TRANSFER)

    @requires(Need.FUND_WRITE)
    @blp.arguments(TransferInSchema())
    @blp.response(201, EntrySchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("transfer.create")
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Moves money from one fund to another (each stays balanced on its own), between the bank accounts
        named or the bank role's default. Needs write rights on both funds."""
        authorize_funds(organisation_id, [data["from_fund_id"], data["to_fund_id"]], write=True)
        return transfers.transfer(unit.session, organisation_id, transfers.Transfer(**data),
                                  idempotency_key=unit.entry_key, recorded_by=unit.recorded_by)


@blp.route("/trial-balance")
class TrialBalance(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(TrialBalanceQuerySchema(), location="query")
    @blp.response(200, TrialBalanceSchema)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The trial balance of the organisation (admins, auditors) or of one fund (its managers too), now or
        as of a date. Amounts are integer minor units; debit and credit columns are equal per currency in
        every fund, and `balanced` says so."""
        authorize_report(organisation_id, query.get("fund_id"))
        session = read_session()
        report = balances.trial_balance(session, organisation_id, query.get("fund_id"), query.get("as_of"))
        head = chain_head(session, organisation_id)
        return {
            "organisation_id": organisation_id, "fund_id": report.fund_id, "as_of": report.as_of,
            "balanced": report.is_balanced(), "lines": list(report.lines),
            "totals": [{"currency": currency, "debit_balance_minor": debit, "credit_balance_minor": credit}
                       for currency, (debit, credit) in sorted(report.totals().items())],
            "sealed_through": {"sequence_no": head[0], "batch_hash": head[1]} if head else None,
        }


@blp.route("/funds/<int:fund_id>/balances")
class FundBalances(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(TrialBalanceQuerySchema(only=("as_of",)), location="query")
    @blp.response(200, TrialBalanceLineSchema(many=True))
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int, fund_id: int):
        """Every account's balance in one fund, now or as of a date. Also as CSV."""
        authorize_funds(organisation_id, [fund_id], write=False)
        lines = balances.trial_balance(read_session(), organisation_id, fund_id, query.get("as_of")).lines
        if wants_csv():
            return csv_response(TrialBalanceLineSchema(many=True).dump(lines),
                                list(TrialBalanceLineSchema().fields), f"fund-{fund_id}-balances")
        return list(lines)


def _every_statement_line(fetch, after: StatementCursor | None):
    """Every line of the statement from ``after`` on, page after page, each read in a short transaction of its
    own (a CSV export is whole)."""
    while True:
        with database().read() as session:
            page = fetch(session, after)
        yield from StatementLineSchema(many=True).dump(page.lines)
        if page.next_cursor is None:
            return
        after = page.next_cursor


@blp.route("/accounts/<int:account_id>/statement")
class Statement(MethodView):
    @requires(Need.FUND_READ)
    @blp.arguments(StatementQuerySchema(), location="query")
    @blp.response(200, StatementSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int, account_id: int):
        """An account's postings in date order with a running balance, keyset-paginated; a fund manager
        names one of their funds. Also as CSV."""
        authorize_report(organisation_id, query.get("fund_id"))
        def fetch(session, after: StatementCursor | None, limit: int = MAX_STATEMENT_PAGE):
            return balances.account_statement(
                session, organisation_id, account_id, query.get("currency"), fund_id=query.get("fund_id"),
                date_from=query.get("date_from"), date_to=query.get("date_to"), after=after, limit=limit)

        first = fetch(read_session(), query.get("after"), query["limit"])  # refusals before any byte is sent
        if wants_csv():
            return csv_response(_every_statement_line(fetch, query.get("after")), list(StatementLineSchema().fields),
                                f"account-{account_id}-statement")
        return first
