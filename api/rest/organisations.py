"""Organisations, their funds, chart of accounts, members, periods, integrity and audit log.

The public sees organisations and funds (names, purposes, status: nothing private); everything else needs a
role in the organisation.
"""

from __future__ import annotations

import json

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.edge import audit
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
    every_row,
    object_id,
    page_or_csv,
    page_schema,
    strict_boolean,
    text,
    wants_csv,
)
from ledger.access import memberships
from ledger.access.policy import Need
from ledger.access.users import find_user_by_email
from ledger.books import charts, organisations, periods
from ledger.books.integrity import integrity_status
from ledger.core.chart import AccountType, BalanceLimit, Role, Side
from ledger.core.errors import NotFound
from ledger.core.money import MAX_AMOUNT_MINOR
from ledger.core.vocabulary import FundKind, FundStatus, MemberRole, OrganisationKind

blp = Blueprint("organisations", __name__, url_prefix="/api/v1",
                description="Organisations, funds, the chart of accounts, members, periods, integrity, audit log")


class OrganisationSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    base_currency = fields.String(required=True)
    jurisdiction = fields.String(required=True)
    registration_number = fields.String(required=True)
    dual_approval_threshold_minor = fields.Integer(
        allow_none=True, required=True, metadata={"description": "Grants above this need two approvers"})
    books_opened_on = fields.Date(required=True, metadata={"description": "No entry may be dated before this day"})
    public_fundraising = fields.Boolean(required=True, metadata={
        "description": "Holds public-fundraising status (公开募捐资格): the disclosure tests depend on it"})


BOOKS_OPENED_DOC = ("The day the books open: no entry may be dated before it. The day the organisation is "
                    "created when left out; moved later only past no entry")


class OrganisationInSchema(Schema):
    name = text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(OrganisationKind)))
    base_currency = fields.String(required=True, validate=validate.Length(equal=3))
    jurisdiction = fields.String(required=True, validate=validate.Length(equal=2))
    registration_number = text(40, required=True)
    books_opened_on = fields.Date(metadata={"description": BOOKS_OPENED_DOC})


class OrganisationPatchSchema(Schema):
    dual_approval_threshold_minor = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT_MINOR))
    books_opened_on = fields.Date(metadata={"description": BOOKS_OPENED_DOC})
    public_fundraising = strict_boolean(metadata={"description": "Holds public-fundraising status (公开募捐资格)"})

    @validates_schema
    def names_a_setting(self, data: dict, **_kwargs) -> None:
        if not data:
            raise ValidationError("name a setting to change: dual_approval_threshold_minor, books_opened_on or "
                                  "public_fundraising", field_name="_schema")


class FundSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    restricted = fields.Boolean(required=True)
    status = fields.String(required=True)
    currency = fields.String(required=True)
    purpose = fields.String(required=True)


class FundInSchema(Schema):
    code = text(40, required=True)
    name = text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(FundKind)))
    restricted = strict_boolean(required=True)
    currency = fields.String(validate=validate.Length(equal=3))
    purpose = text(2000)


class FundPatchSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(list(FundStatus)))


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True)
    normal_balance = fields.String(required=True)
    balance_limit = fields.String(required=True)
    role = fields.String(allow_none=True, required=True)
    role_default = fields.Boolean(required=True, metadata={
        "description": "The account recipes take for its role when the request names none"})


class AccountInSchema(Schema):
    code = text(20, required=True)
    name_zh = text(200, required=True)
    name_en = text(200, required=True)
    type = fields.String(required=True, validate=validate.OneOf(list(AccountType)))
    normal_balance = fields.String(validate=validate.OneOf(list(Side)), metadata={
        "description": "Debit for assets and expenses, credit for the rest, when left out"})
    balance_limit = fields.String(load_default=BalanceLimit.NONE, validate=validate.OneOf(list(BalanceLimit)))
    role = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(list(Role)), metadata={
        "description": "What the recipes may use it for: a second `bank` account, a `processor_clearing` account "
                       "per payment channel"})
    role_default = strict_boolean(load_default=False)


class AccountPatchSchema(Schema):
    balance_limit = fields.String(validate=validate.OneOf(list(BalanceLimit)))
    role_default = strict_boolean(validate=validate.Equal(True), metadata={
        "description": "true: make this account its role's default (another account becomes the default instead "
                       "of turning this one off)"})

    @validates_schema
    def names_a_change(self, data: dict, **_kwargs) -> None:
        if not data:
            raise ValidationError("name balance_limit, role_default or both", field_name="balance_limit")


class MemberSchema(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    fund_ids = fields.List(fields.Integer(), required=True)


class MemberInSchema(Schema):
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(list(MemberRole)))
    fund_ids = fields.List(object_id(strict=True), load_default=list, validate=validate.Length(max=1000))


class PeriodSchema(Schema):
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    status = fields.String(required=True)
    changed_at = fields.DateTime(required=True)
    changed_by = fields.String(required=True)


class SealedThroughSchema(Schema):
    sequence_no = fields.Integer(required=True)
    batch_hash = fields.String(required=True)
    last_entry_id = fields.Integer(required=True)


class IntegritySchema(Schema):
    organisation_id = fields.Integer(required=True)
    verified = fields.Boolean(required=True, metadata={"description": "Every cached total and sealed batch checks"})
    problems = fields.Function(lambda status: [str(problem) for problem in status.problems], required=True,
                               metadata={"type": "array", "items": {"type": "string"}})
    sealed_through = fields.Nested(SealedThroughSchema, allow_none=True, required=True)
    unsealed_entries = fields.Integer(required=True)
    checked_at = fields.DateTime(required=True)


class AuditRecordSchema(Schema):
    id = fields.Integer(required=True)
    occurred_at = fields.DateTime(required=True)
    user_id = fields.Integer(allow_none=True, required=True)
    remote_addr = fields.String(required=True)
    method = fields.String(required=True)
    path = fields.String(required=True)
    action = fields.String(required=True)
    status_code = fields.Integer(required=True)
    details = fields.Function(lambda record: _details(record.details), required=True)


def _details(text: str) -> dict:
    # Records are never rewritten, so one that does not parse (written before truncation kept JSON whole) is
    # shown as it is rather than failing the whole page.
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}


FundPageSchema = page_schema(FundSchema, "FundPage")
AuditPageSchema = page_schema(AuditRecordSchema, "AuditPage")


@blp.route("/organisations")
class Organisations(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, OrganisationSchema(many=True))
    @documents_problems(blp)
    def get(self):
        """Lists the organisations kept in this ledger (public)."""
        return organisations.list_organisations(read_session())

    @requires(Need.PLATFORM_ADMIN)
    @blp.arguments(OrganisationInSchema())
    @blp.response(201, OrganisationSchema)
    @documents_problems(blp, 403, 409, 422)
    @perform("organisation.create", moves_money=False)
    def post(self, data, unit: UnitOfWork):
        """Creates an organisation with the default chart of accounts and its general fund, its books open from
        `books_opened_on` (today when left out)."""
        return organisations.create_organisation(unit.session, created_by=unit.recorded_by, **data)


@blp.route("/organisations/<int:organisation_id>")
class OrganisationItem(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, OrganisationSchema)
    @documents_problems(blp, 404)
    def get(self, organisation_id: int):
        """One organisation (public)."""
        return organisations.get_organisation(read_session(), organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(OrganisationPatchSchema())
    @blp.response(200, OrganisationSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("organisation.update", moves_money=False)
    def patch(self, data, organisation_id: int, unit: UnitOfWork):
        """Sets the amount above which a grant needs two approvers (null: one approver always), the day the
        books opened (409 `conflict` when an entry is dated before the new day), or whether the organisation holds
        public-fundraising status."""
        organisation = organisations.get_organisation(unit.session, organisation_id)
        if "dual_approval_threshold_minor" in data:
            organisation = organisations.set_dual_approval_threshold(unit.session, organisation_id,
                                                                     data["dual_approval_threshold_minor"])
        if "books_opened_on" in data:
            organisation = periods.set_books_opened_on(unit.session, organisation_id, data["books_opened_on"],
                                                       unit.recorded_by)
        if "public_fundraising" in data:
            organisation = organisations.set_public_fundraising(unit.session, organisation_id,
                                                                data["public_fundraising"])
        return organisation


@blp.route("/organisations/<int:organisation_id>/funds")
class Funds(MethodView):
    @requires(Need.PUBLIC)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, FundPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 404, 422)
    def get(self, query, organisation_id: int):
        """The organisation's funds: names, purposes, status (public). Also as CSV."""
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return organisations.list_funds(session, organisation_id, after=after, limit=limit)

        return page_or_csv(fetch, query, FundSchema, "funds")

    @requires(Need.ORG_ADMIN)
    @blp.arguments(FundInSchema())
    @blp.response(201, FundSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("fund.create", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Opens a fund: a community, project or general fund, restricted or not."""
        return organisations.create_fund(unit.session, organisation_id, **data)


@blp.route("/organisations/<int:organisation_id>/funds/<int:fund_id>")
class FundItem(MethodView):
    @requires(Need.PUBLIC)
    @blp.response(200, FundSchema)
    @documents_problems(blp, 404)
    def get(self, organisation_id: int, fund_id: int):
        """One fund (public)."""
        return organisations.get_fund(read_session(), organisation_id, fund_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(FundPatchSchema())
    @blp.response(200, FundSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("fund.update", moves_money=False)
    def patch(self, data, organisation_id: int, fund_id: int, unit: UnitOfWork):
        """Closes a fund to postings, or opens it again."""
        return organisations.set_fund_status(unit.session, organisation_id, fund_id, data["status"])


@blp.route("/organisations/<int:organisation_id>/accounts")
class Accounts(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, AccountSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """The chart of accounts: each account's role, and which account is each role's default."""
        return charts.list_accounts(read_session(), organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(AccountInSchema())
    @blp.response(201, AccountSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("account.create", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Adds an account to the chart: a second bank account, a clearing account for another payment channel.
        An account with a role has that role's element and normal side; it is the role's default when asked
        (the role's earlier default stays in the chart, no longer taken by default)."""
        return charts.create_account(unit.session, organisation_id, **data)


@blp.route("/organisations/<int:organisation_id>/accounts/<int:account_id>")
class AccountItem(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(AccountPatchSchema())
    @blp.response(200, AccountSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    @perform("account.update", moves_money=False)
    def patch(self, data, organisation_id: int, account_id: int, unit: UnitOfWork):
        """Sets an account's balance limit (refused while a balance already breaks the new limit), or makes it
        its role's default."""
        account = charts.get_account(unit.session, organisation_id, account_id)
        if "balance_limit" in data:
            account = charts.set_account_limit(unit.session, organisation_id, account_id, data["balance_limit"])
        if data.get("role_default"):
            account = charts.make_role_default(unit.session, organisation_id, account_id)
        return account


@blp.route("/organisations/<int:organisation_id>/members")
class Members(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, MemberSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Who has a role in the organisation, and which funds each fund manager manages."""
        return memberships.list_members(read_session(), organisation_id)

    @requires(Need.ORG_ADMIN)
    @blp.arguments(MemberInSchema())
    @blp.response(200, MemberSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("member.set", moves_money=False)
    def post(self, data, organisation_id: int, unit: UnitOfWork):
        """Gives an existing user a role here (replacing any earlier one); fund managers get their funds."""
        organisations.get_organisation(unit.session, organisation_id)
        user = find_user_by_email(unit.session, data["email"])
        if user is None:
            raise NotFound("no user has this email", field="email")
        return memberships.set_membership(unit.session, organisation_id, user.id, data["role"], data["fund_ids"])


@blp.route("/organisations/<int:organisation_id>/members/<int:user_id>")
class MemberItem(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(204)
    @documents_problems(blp, 403, 404)
    @perform("member.remove", moves_money=False)
    def delete(self, organisation_id: int, user_id: int, unit: UnitOfWork):
        """Takes a user's role in the organisation away."""
        memberships.remove_membership(unit.session, organisation_id, user_id)


@blp.route("/organisations/<int:organisation_id>/periods")
class Periods(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, PeriodSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Months that were closed (or closed and reopened); a month never closed is open."""
        return periods.list_periods(read_session(), organisation_id)


@blp.route("/organisations/<int:organisation_id>/periods/<int:year>/<int:month>/close")
class PeriodClose(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(200, PeriodSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("period.close", moves_money=False)
    def post(self, organisation_id: int, year: int, month: int, unit: UnitOfWork):
        """Closes a month: from now on no entry dated inside it is accepted."""
        return periods.close_period(unit.session, organisation_id, year, month, unit.recorded_by)


@blp.route("/organisations/<int:organisation_id>/periods/<int:year>/<int:month>/reopen")
class PeriodReopen(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(200, PeriodSchema)
    @documents_problems(blp, 403, 404, 422)
    @perform("period.reopen", moves_money=False)
    def post(self, organisation_id: int, year: int, month: int, unit: UnitOfWork):
        """Opens a closed month again (the change is in the audit log)."""
        return periods.reopen_period(unit.session, organisation_id, year, month, unit.recorded_by)


@blp.route("/organisations/<int:organisation_id>/integrity")
class Integrity(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, IntegritySchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Recomputes every cached total from the postings and re-hashes every sealed batch, now."""
        return integrity_status(read_session(), organisation_id)


def _audit_rows(records: list) -> list[dict]:
    return [{**record, "details": json.dumps(record["details"], ensure_ascii=False)}
            for record in AuditRecordSchema(many=True).dump(records)]


@blp.route("/organisations/<int:organisation_id>/audit-log")
class AuditLog(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, AuditPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Every write made in the organisation: who, when, from where, what. Append-only. Also as CSV."""
        def fetch(session, after: int | None, limit: int = MAX_PAGE_SIZE):
            return audit.organisation_log(session, organisation_id, after=after, limit=limit)

        if wants_csv():
            return csv_response(every_row(fetch, query.get("after"), _audit_rows), list(AuditRecordSchema().fields),
                                "audit-log")
        return fetch(read_session(), query.get("after"), query["limit"])
