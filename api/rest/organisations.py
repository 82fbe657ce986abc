"""Organisations, their funds, chart of accounts, members, periods, integrity and audit log.

The public sees organisations and funds (names, purposes, status: nothing private); everything else needs a
role in the organisation.
"""

from __future__ import annotations

import datetime as dt
import json

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from api.edge.audit import organisation_log
from api.edge.auth import requires
from api.edge.session import read_session
from api.edge.writes import perform
from api.rest.common import (
    CSV_DOC,
    Instant,
    PageQuerySchema,
    csv_response,
    documents_problems,
    object_id,
    page_schema,
    strict_boolean,
    text,
    wants_csv,
)
from ledger.access import tokens as access
from ledger.access.tokens import Need
from ledger.books import organisations, periods
from ledger.books.integrity import last_batch, verify
from ledger.core.chart import BalanceLimit
from ledger.core.errors import NotFound
from ledger.core.money import MAX_AMOUNT_MINOR
from ledger.db.listing import keyset_page
from ledger.db.models import Account, AuditRecord, Entry, Fund, Organisation, Period

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


class OrganisationInSchema(Schema):
    name = text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(organisations.ORGANISATION_KINDS))
    base_currency = fields.String(required=True, validate=validate.Length(equal=3))
    jurisdiction = fields.String(required=True, validate=validate.Length(equal=2))
    registration_number = text(40, required=True)


class OrganisationPatchSchema(Schema):
    dual_approval_threshold_minor = fields.Integer(
        required=True, allow_none=True, strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT_MINOR))


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
    kind = fields.String(required=True, validate=validate.OneOf(("community", "project", "general")))
    restricted = strict_boolean(required=True)
    currency = fields.String(validate=validate.Length(equal=3))
    purpose = text(2000)


class FundPatchSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("open", "closed")))


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True)
    normal_balance = fields.String(required=True)
    balance_limit = fields.String(required=True)
    role = fields.String(allow_none=True, required=True)


class AccountPatchSchema(Schema):
    balance_limit = fields.String(required=True, validate=validate.OneOf([limit.value for limit in BalanceLimit]))


class MemberSchema(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    fund_ids = fields.List(fields.Integer(), required=True)


class MemberInSchema(Schema):
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(access.ROLES))
    fund_ids = fields.List(object_id(strict=True), load_default=list, validate=validate.Length(max=1000))


class PeriodSchema(Schema):
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    status = fields.String(required=True)
    changed_at = Instant(required=True)
    changed_by = fields.String(required=True)


class SealedThroughSchema(Schema):
    sequence_no = fields.Integer(required=True)
    batch_hash = fields.String(required=True)
    last_entry_id = fields.Integer(required=True)


class IntegritySchema(Schema):
    organisation_id = fields.Integer(required=True)
    verified = fields.Boolean(required=True, metadata={"description": "Every cached total and sealed batch checks"})
    problems = fields.List(fields.String(), required=True)
    sealed_through = fields.Nested(SealedThroughSchema, allow_none=True, required=True)
    unsealed_entries = fields.Integer(required=True)
    checked_at = Instant(required=True)


class AuditRecordSchema(Schema):
    id = fields.Integer(required=True)
    occurred_at = Instant(required=True)
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
        return read_session().scalars(select(Organisation).order_by(Organisation.id)).all()

    @requires(Need.PLATFORM_ADMIN)
    @blp.arguments(OrganisationInSchema())
    @blp.response(201, OrganisationSchema)
    @documents_problems(blp, 403, 409, 422)
    def post(self, data):
        """Creates an organisation with the default chart of accounts and its general fund."""
        return perform("organisation.create", None, lambda session, _principal: OrganisationSchema().dump(
            organisations.create_organisation(session, **data)), moves_money=False)


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
    def patch(self, data, organisation_id: int):
        """Sets the amount above which a grant needs two approvers (null: one approver always)."""
        def work(session, _principal):
            organisation = organisations.get_organisation(session, organisation_id)
            organisation.dual_approval_threshold_minor = data["dual_approval_threshold_minor"]
            session.flush()
            return OrganisationSchema().dump(organisation)
        return perform("organisation.update", organisation_id, work, status=200, moves_money=False)


@blp.route("/organisations/<int:organisation_id>/funds")
class Funds(MethodView):
    @requires(Need.PUBLIC)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, FundPageSchema)
    @documents_problems(blp, 404, 422)
    def get(self, query, organisation_id: int):
        """The organisation's funds: names, purposes, status (public)."""
        session = read_session()
        organisations.get_organisation(session, organisation_id)
        page = keyset_page(session, select(Fund).where(Fund.organisation_id == organisation_id), Fund.id,
                           query.get("after"), query["limit"])
        return {"items": page.items, "next_after": page.next_after}

    @requires(Need.ORG_ADMIN)
    @blp.arguments(FundInSchema())
    @blp.response(201, FundSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    def post(self, data, organisation_id: int):
        """Opens a fund: a community, project or general fund, restricted or not."""
        return perform("fund.create", organisation_id, lambda session, _principal: FundSchema().dump(
            organisations.create_fund(session, organisation_id, **data)), moves_money=False)


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
    def patch(self, data, organisation_id: int, fund_id: int):
        """Closes a fund to postings, or opens it again."""
        return perform("fund.update", organisation_id, lambda session, _principal: FundSchema().dump(
            organisations.set_fund_status(session, organisation_id, fund_id, data["status"])),
            status=200, moves_money=False)


@blp.route("/organisations/<int:organisation_id>/accounts")
class Accounts(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, AccountSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """The chart of accounts."""
        session = read_session()
        organisations.get_organisation(session, organisation_id)
        return session.scalars(select(Account).where(Account.organisation_id == organisation_id)
                               .order_by(Account.code)).all()


@blp.route("/organisations/<int:organisation_id>/accounts/<int:account_id>")
class AccountItem(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.arguments(AccountPatchSchema())
    @blp.response(200, AccountSchema)
    @documents_problems(blp, 403, 404, 409, 422)
    def patch(self, data, organisation_id: int, account_id: int):
        """Sets an account's balance limit; refused while a balance already breaks the new limit."""
        def work(session, _principal):
            organisations.set_account_limit(session, organisation_id, account_id, data["balance_limit"])
            account = session.get(Account, account_id)
            session.refresh(account)
            return AccountSchema().dump(account)
        return perform("account.update", organisation_id, work, status=200, moves_money=False)


@blp.route("/organisations/<int:organisation_id>/members")
class Members(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, MemberSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Who has a role in the organisation, and which funds each fund manager manages."""
        return [_member(m, u, funds) for m, u, funds in access.memberships(read_session(), organisation_id)]

    @requires(Need.ORG_ADMIN)
    @blp.arguments(MemberInSchema())
    @blp.response(200, MemberSchema)
    @documents_problems(blp, 403, 404, 422)
    def post(self, data, organisation_id: int):
        """Gives an existing user a role here (replacing any earlier one); fund managers get their funds."""
        def work(session, _principal):
            organisations.get_organisation(session, organisation_id)
            user = access.find_user_by_email(session, data["email"])
            if user is None:
                raise NotFound("no user has this email", field="email")
            membership = access.set_membership(session, organisation_id, user.id, data["role"], data["fund_ids"])
            return MemberSchema().dump(_member(membership, user, sorted(set(data["fund_ids"]))))
        return perform("member.set", organisation_id, work, status=200, moves_money=False)


@blp.route("/organisations/<int:organisation_id>/members/<int:user_id>")
class MemberItem(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(204)
    @documents_problems(blp, 403, 404)
    def delete(self, organisation_id: int, user_id: int):
        """Takes a user's role in the organisation away."""
        def work(session, _principal):
            access.remove_membership(session, organisation_id, user_id)
            return {}
        perform("member.remove", organisation_id, work, status=204, moves_money=False)
        return "", 204


def _member(membership, user, fund_ids) -> dict:
    return {"user_id": user.id, "email": user.email, "display_name": user.display_name,
            "role": membership.role, "fund_ids": fund_ids}


@blp.route("/organisations/<int:organisation_id>/periods")
class Periods(MethodView):
    @requires(Need.MEMBER_READ)
    @blp.response(200, PeriodSchema(many=True))
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Months that were closed (or closed and reopened); a month never closed is open."""
        return read_session().scalars(select(Period).where(Period.organisation_id == organisation_id)
                                      .order_by(Period.start_date)).all()


def _change_period(organisation_id: int, year: int, month: int, action: str):
    change = periods.close_period if action == "close" else periods.reopen_period
    return perform(f"period.{action}", organisation_id, lambda session, principal: PeriodSchema().dump(
        change(session, organisation_id, year, month, principal.email)), status=200, moves_money=False)


@blp.route("/organisations/<int:organisation_id>/periods/<int:year>/<int:month>/close")
class PeriodClose(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(200, PeriodSchema)
    @documents_problems(blp, 403, 404, 422)
    def post(self, organisation_id: int, year: int, month: int):
        """Closes a month: from now on no entry dated inside it is accepted."""
        return _change_period(organisation_id, year, month, "close")


@blp.route("/organisations/<int:organisation_id>/periods/<int:year>/<int:month>/reopen")
class PeriodReopen(MethodView):
    @requires(Need.ORG_ADMIN)
    @blp.response(200, PeriodSchema)
    @documents_problems(blp, 403, 404, 422)
    def post(self, organisation_id: int, year: int, month: int):
        """Opens a closed month again (the change is in the audit log)."""
        return _change_period(organisation_id, year, month, "reopen")


@blp.route("/organisations/<int:organisation_id>/integrity")
class Integrity(MethodView):
    @requires(Need.ORG_READ)
    @blp.response(200, IntegritySchema)
    @documents_problems(blp, 403, 404)
    def get(self, organisation_id: int):
        """Recomputes every cached total from the postings and re-hashes every sealed batch, now."""
        session = read_session()
        organisations.get_organisation(session, organisation_id)
        last = last_batch(session, organisation_id)
        unsealed = session.scalar(select(func.count()).where(Entry.organisation_id == organisation_id,
                                                             Entry.id > (last.last_entry_id if last else 0)))
        problems = [str(problem) for problem in verify(session, organisation_id)]
        return {"organisation_id": organisation_id, "verified": not problems, "problems": problems,
                "sealed_through": last, "unsealed_entries": unsealed, "checked_at": dt.datetime.now(dt.UTC)}


@blp.route("/organisations/<int:organisation_id>/audit-log")
class AuditLog(MethodView):
    @requires(Need.ORG_READ)
    @blp.arguments(PageQuerySchema(), location="query")
    @blp.response(200, AuditPageSchema)
    @blp.doc(**CSV_DOC)
    @documents_problems(blp, 403, 404, 422)
    def get(self, query, organisation_id: int):
        """Every write made in the organisation: who, when, from where, what. Append-only. Also as CSV."""
        page = keyset_page(read_session(), organisation_log(organisation_id), AuditRecord.id,
                           query.get("after"), query["limit"])
        if wants_csv():
            rows = [{**record, "details": json.dumps(record["details"], ensure_ascii=False)}
                    for record in AuditRecordSchema(many=True).dump(page.items)]
            return csv_response(rows, list(AuditRecordSchema().fields), "audit-log")
        return {"items": page.items, "next_after": page.next_after}
