"""Reconciliation (issue 13, begun): bank statements imported for an account of money (a file upload, all or
nothing, each line once however often the statement comes), the organisation's CSV layouts (one per bank), and the
statements and their lines read back."""

from __future__ import annotations

import json

from flask.views import MethodView
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from api.edge.auth import requires
from api.edge.session import read_session
from api.edge.writes import UnitOfWork, perform
from api.rest.common import (
    CSV_DOC,
    MAX_PAGE_SIZE,
    Blueprint,
    PageQuerySchema,
    csv_response,
    documents_problems,
    object_id,
    page_or_csv,
    page_schema,
    text,
    wants_csv,
)
from ledger.access.policy import Need
from ledger.reconciliation import closes, imports, mappings, matches
from ledger.reconciliation.matches import REPORT_COLUMNS, report_rows

blp = Blueprint("reconciliation", __name__, url_prefix="/api/v1/organisations/<int:organisation_id>",
                description="Reconciliation: bank statements and their lines")

FORMATS = ["csv", "ofx", "camt053"]


class StatementMappingSchema(Schema):
    date = text(100, required=True, metadata={"description": "the date column's header", "example": "交易日期"})
    amount = text(100, metadata={"description": "one signed amount column; or debit and credit"})
    debit = text(100, metadata={"description": "money out (借方)", "example": "借方发生额"})
    credit = text(100, metadata={"description": "money in (贷方)", "example": "贷方发生额"})
    reference = text(100)
    counterparty = text(100, metadata={"example": "对方户名"})
    description = text(100, metadata={"example": "摘要"})
    bank_id = text(100, metadata={"description": "the bank's own transaction id", "example": "交易流水号"})
    balance = text(100)
    date_format = text(40, metadata={"description": "strftime's format, when not one of the usual ones"})
    delimiter = text(1, metadata={"description": "one character; a comma when left out"})
    currency = text(3, metadata={"description": "the lines' currency; the books' when left out"})


class NamedStatementMappingSchema(StatementMappingSchema):
    name = fields.String(required=True)


class BankStatementFormSchema(Schema):
    account_id = object_id(required=True, metadata={"description": "the chart's bank, cash or clearing account"})
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    mapping = fields.String(load_default="cn_bank", validate=validate.Length(min=1, max=60), metadata={
        "description": "a CSV's layout: a preset (cn_bank, generic) or a saved layout's name"})


class BankStatementFileSchema(Schema):
    file = Upload(required=True, metadata={"description": "the statement as the bank gave it"})


class BankStatementSchema(Schema):
    id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    currency = fields.String(required=True)
    format = fields.String(required=True)
    filename = fields.String(required=True)
    sha256 = fields.String(required=True)
    bank_account = fields.String(required=True, metadata={"description": "the account's number as the file gives it"})
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    opening_minor = fields.Integer(required=True, allow_none=True)
    closing_minor = fields.Integer(required=True, allow_none=True)
    line_count = fields.Integer(required=True)
    new_line_count = fields.Integer(required=True, metadata={"description": "lines no earlier statement brought"})
    imported_at = fields.DateTime(required=True)


class BankLineSchema(Schema):
    id = fields.Integer(required=True)
    statement_id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    booked_on = fields.Date(required=True)
    amount_minor = fields.Integer(required=True, metadata={"description": "money in positive, money out negative"})
    currency = fields.String(required=True)
    reference = fields.String(required=True)
    counterparty = fields.String(required=True)
    description = fields.String(required=True)
    bank_id = fields.String(required=True)


class BankLineQuerySchema(PageQuerySchema):
    account_id = object_id(required=True)


StatementPageSchema = page_schema(BankStatementSchema, "BankStatementPage")
LinePageSchema = page_schema(BankLineSchema, "BankLinePage")


@blp.route("/statement-mappings")
class Mappings(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, NamedStatementMappingSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Every CSV layout the organisation can import with: the presets and its own."""
        return [{"name": name, **_fields(mapping)}
                for name, mapping in mappings.list_mappings(read_session(), organisation_id).items()]


def _fields(mapping) -> dict:
    return {field: getattr(mapping, field) for field in mappings.FIELDS}


@blp.route("/statement-mappings/<name>")
class MappingItem(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(StatementMappingSchema())
    @blp.response(200, NamedStatementMappingSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("statement_mapping.save", moves_money=False)
    def put(self, data, organisation_id: int, name: str, unit: UnitOfWork):
        """Saves a bank's CSV layout under a name (the column headers as the bank writes them)."""
        return {"name": name, **_fields(mappings.save_mapping(unit.session, organisation_id, name, data,
                                                              unit.recorded_by))}


@blp.route("/statements")
class Statements(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, StatementPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The statements imported, oldest first. Also as CSV."""
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return imports.list_statements(session, organisation_id, after=after, limit=limit)

        return page_or_csv(fetch, query, BankStatementSchema, "statements")

    @requires(Need.ORG_ADMIN)
    @blp.arguments(BankStatementFormSchema(), location="form")
    @blp.arguments(BankStatementFileSchema(), location="files")
    @blp.response(201, BankStatementSchema)
    @documents_problems(blp, 403, 404, 413, 422)
    @perform("statement.import", moves_money=False)
    def post(self, form, files, organisation_id: int, unit: UnitOfWork):
        """Imports a bank statement (multipart: ``file``, ``account_id``, ``format``, and for a CSV its layout's
        ``mapping``), all or nothing. A line any earlier statement of the account brought is not added again
        (``new_line_count`` says how many were new). A bad file is a 422 naming the file and the line."""
        upload = files["file"]
        layout = mappings.get_mapping(unit.session, organisation_id, form["mapping"]) \
            if form["format"] == "csv" else None
        return imports.import_statement(
            unit.session, organisation_id, form["account_id"], filename=upload.filename or "statement",
            content=upload.read(), file_format=form["format"], mapping=layout,
            imported_by=unit.recorded_by).statement


@blp.route("/statement-lines")
class Lines(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(BankLineQuerySchema(), location="query")
    @blp.response(200, LinePageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """An account's statement lines, in the order they were imported. Also as CSV."""
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return imports.statement_lines(session, organisation_id, query["account_id"], after=after, limit=limit)

        return page_or_csv(fetch, query, BankLineSchema, "statement-lines")



class ReconciliationMatchInSchema(Schema):
    account_id = object_id(required=True)
    line_ids = fields.List(object_id(), required=True, validate=validate.Length(min=1, max=100))
    entry_ids = fields.List(object_id(), required=True, validate=validate.Length(min=1, max=100))


class ReconciliationMatchSchema(Schema):
    id = fields.Integer(required=True)
    account_id = fields.Integer(required=True)
    rule = fields.String(required=True, metadata={
        "description": "one_to_one, one_line_many_items, many_lines_one_item (automatic), manual, manual_split"})
    amount_minor = fields.Integer(required=True)
    line_ids = fields.Function(lambda match: json.loads(match.line_ids), required=True)
    entry_ids = fields.Function(lambda match: json.loads(match.entry_ids), required=True)
    created_at = fields.DateTime(required=True)
    unmatched_at = fields.DateTime(required=True, allow_none=True)


class AutoMatchedSchema(Schema):
    matches = fields.Integer(required=True)
    by_rule = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "one_to_one, one_line_many_items, many_lines_one_item"})
    lines = fields.Integer(required=True)
    entries = fields.Integer(required=True)


class MatchProposalSchema(Schema):
    line_ids = fields.List(fields.Integer(), required=True)
    entry_ids = fields.List(fields.Integer(), required=True, attribute="item_ids")
    score = fields.Integer(required=True)
    rule = fields.String(required=True)


class ReconciliationAccountSchema(Schema):
    account_id = object_id(required=True)


class ReconciliationReportQuerySchema(ReconciliationAccountSchema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)


class UnmatchedSchema(Schema):
    id = fields.Integer(required=True)
    day = fields.Date(required=True)
    amount_minor = fields.Integer(required=True)
    text = fields.String(required=True)


class ReconciliationReportSchema(Schema):
    account_id = fields.Integer(required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    bank_closing_minor = fields.Integer(required=True, allow_none=True, metadata={
        "description": "the latest statement's closing balance through the end; null when none states one"})
    books_closing_minor = fields.Integer(required=True)
    matched_lines = fields.Integer(required=True)
    matched_minor = fields.Integer(required=True)
    unmatched_lines = fields.List(fields.Nested(UnmatchedSchema), required=True, metadata={
        "description": "in the bank, not in the books (from the start)"})
    unmatched_entries = fields.List(fields.Nested(UnmatchedSchema), required=True, attribute="unmatched_items",
                                    metadata={"description": "in the books, not in the bank (from the start)"})
    unexplained_minor = fields.Integer(required=True, allow_none=True, metadata={
        "description": "bank closing − bank-only lines + books-only entries − books closing: 0 when it reconciles"})
    reconciled = fields.Boolean(required=True)
    frozen = fields.Boolean(required=True, metadata={
        "description": "a whole month closed as reconciled: the report frozen when it was closed, never changed"})
    closed_at = fields.DateTime(required=True, allow_none=True, metadata={"description": "when it was frozen"})
    sha256 = fields.String(required=True, allow_none=True, metadata={
        "description": "the SHA-256 of the frozen report's canonical JSON"})
    version = fields.Integer(required=True, allow_none=True, metadata={
        "description": "the month's close it is (a month reopened and closed again: the next)"})


@blp.route("/reconciliation/suggestions")
class Suggestions(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(ReconciliationAccountSchema(), location="query")
    @blp.response(200, MatchProposalSchema(many=True))
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Scored proposals for the account's unmatched lines and entries, best first (one to one by amount and
        date, with a word of the payer's name or reference in the entry; a line to several entries and back)."""
        return matches.suggestions(read_session(), organisation_id, query["account_id"])


@blp.route("/reconciliation/auto-match")
class AutoMatch(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(ReconciliationAccountSchema())
    @blp.response(201, AutoMatchedSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("reconciliation.auto_match", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Takes every proposal that is the best, untied, for each of its lines and entries; says how many, by rule
        (the matches are in the report, and each can be undone)."""
        return matches.auto_match(unit.session, organisation_id, data["account_id"], unit.recorded_by)


@blp.route("/reconciliation/matches")
class Matches(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(ReconciliationMatchInSchema())
    @blp.response(201, ReconciliationMatchSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("reconciliation.match", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Matches unmatched lines to unmatched entries of the account; they must sum alike (in the audit log)."""
        return matches.match(unit.session, organisation_id, data["account_id"], data["line_ids"], data["entry_ids"],
                             unit.recorded_by)


@blp.route("/reconciliation/matches/<int:match_id>/unmatch")
class Unmatch(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(200, ReconciliationMatchSchema)
    @documents_problems(blp, 403, 404, 409)
    @perform("reconciliation.unmatch", moves_money=False)
    def post(self, organisation_id: int, match_id: int, unit: UnitOfWork):
        """Undoes a match: its lines and entries are unmatched again, the match kept with who undid it and when."""
        return matches.unmatch(unit.session, organisation_id, match_id, unit.recorded_by)


@blp.route("/reconciliation/report")
class ReconciliationReport(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(ReconciliationReportQuerySchema(), location="query")
    @blp.response(200, ReconciliationReportSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """The account's reconciliation through ``end``: the bank's closing balance, the books', what only each side
        has from ``start``, and the difference left unexplained (0: reconciled); for a whole month closed as reconciled,
        the report frozen when it was closed. ``Accept: text/csv``: the same as
        one table (``section`` summary, bank_only or books_only)."""
        found = closes.read_report(read_session(), organisation_id, query["account_id"], query["start"],
                                   query["end"])
        if wants_csv():
            return csv_response(report_rows(found), REPORT_COLUMNS,
                                f"reconciliation-{found.account_id}-{found.start}-{found.end}")
        return found


class FromLineSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["gift", "entry"]), metadata={
        "description": "gift: money in, recorded as a bank gift; entry: against account_id (a bank fee, interest)"})
    fund_id = object_id(required=True)
    account_id = object_id(allow_none=True, load_default=None, metadata={
        "description": "for an entry: the other account (an expense for a fee, a revenue for interest)"})
    donor_id = object_id(allow_none=True, load_default=None, metadata={"description": "for a gift, if known"})
    description = text(500)


@blp.route("/reconciliation/lines/<int:line_id>/entry")
class EntryFromLine(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(FromLineSchema())
    @blp.response(201, ReconciliationMatchSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("reconciliation.entry_from_line")
    def post(self, data, organisation_id: int, line_id: int, unit: UnitOfWork):
        """Records what the books lack for a line — a gift, or an entry such as a bank fee or interest — dated the
        day the bank booked it, through the ledger's own rules, and matches the line to it (one entry per line,
        however often asked)."""
        return matches.entry_from_line(unit.session, organisation_id, line_id, matches.FromLine(**data),
                                       unit.recorded_by)
