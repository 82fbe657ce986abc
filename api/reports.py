"""Read-only reports: organisations and their trial balances."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from api.session import read_session
from ledger.balances import trial_balance
from ledger.integrity import chain_head
from ledger.models import Organisation
from ledger.organisations import get_organisation

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Organisations and trial balances")


class OrganisationSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    base_currency = fields.String(required=True)
    jurisdiction = fields.String(required=True)
    registration_number = fields.String(required=True)
    trial_balance_url = fields.String(required=True)


class TrialBalanceQuerySchema(Schema):
    fund_id = fields.Integer(metadata={"description": "Only this fund (every fund balances on its own)"})
    as_of = fields.Date(metadata={"description": "Balances at the end of this effective date"})


class TrialBalanceLineSchema(Schema):
    account_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True)
    currency = fields.String(required=True)
    debits_minor = fields.Integer(required=True)
    credits_minor = fields.Integer(required=True)
    debit_balance_minor = fields.Integer(required=True)
    credit_balance_minor = fields.Integer(required=True)


class TotalsSchema(Schema):
    currency = fields.String(required=True)
    debit_balance_minor = fields.Integer(required=True)
    credit_balance_minor = fields.Integer(required=True)


class SealSchema(Schema):
    sequence_no = fields.Integer(required=True)
    batch_hash = fields.String(required=True)


class TrialBalanceSchema(Schema):
    organisation_id = fields.Integer(required=True)
    fund_id = fields.Integer(allow_none=True)
    as_of = fields.Date(allow_none=True)
    balanced = fields.Boolean(required=True)
    lines = fields.List(fields.Nested(TrialBalanceLineSchema), required=True)
    totals = fields.List(fields.Nested(TotalsSchema), required=True)
    sealed_through = fields.Nested(SealSchema, allow_none=True,
                                   metadata={"description": "The newest sealed batch of the ledger"})


def _organisation_view(organisation: Organisation) -> dict:
    return {**{name: getattr(organisation, name) for name in (
        "id", "name", "kind", "base_currency", "jurisdiction", "registration_number")},
        "trial_balance_url": url_for("reports.TrialBalance", organisation_id=organisation.id)}


@blp.route("/organisations")
class Organisations(MethodView):
    @blp.response(200, OrganisationSchema(many=True))
    def get(self):
        """Lists the organisations kept in this ledger."""
        session = read_session()
        return [_organisation_view(o) for o in session.scalars(select(Organisation).order_by(Organisation.id))]


@blp.route("/organisations/<int:organisation_id>/trial-balance")
class TrialBalance(MethodView):
    @blp.arguments(TrialBalanceQuerySchema, location="query")
    @blp.response(200, TrialBalanceSchema)
    @blp.alt_response(404, description="No such organisation or fund")
    def get(self, query, organisation_id: int):
        """The trial balance of an organisation, or of one of its funds, now or as of a date.

        Amounts are integer minor units (fen for CNY). Debit and credit balance columns are equal per
        currency in every fund; ``balanced`` says so.
        """
        session = read_session()
        get_organisation(session, organisation_id)
        report = trial_balance(session, organisation_id, query.get("fund_id"), query.get("as_of"))
        head = chain_head(session, organisation_id)
        return {
            "organisation_id": organisation_id, "fund_id": report.fund_id, "as_of": report.as_of,
            "balanced": report.is_balanced(),
            "lines": [{**{name: getattr(line, name) for name in TrialBalanceLineSchema().fields}}
                      for line in report.lines],
            "totals": [{"currency": currency, "debit_balance_minor": debit, "credit_balance_minor": credit}
                       for currency, (debit, credit) in sorted(report.totals().items())],
            "sealed_through": {"sequence_no": head[0], "batch_hash": head[1]} if head else None,
        }
