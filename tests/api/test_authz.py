"""The authorization matrix: every API route, read off the application's route map, called by every role,
on its own organisation's fund, on another fund of that organisation, and on another organisation.

The expected answer comes from this file's own table of what each route needs (ROUTE_NEEDS) and its own
reading of the roles (expected()); the application's declared rule must agree with the table, and its
answers with the expectation. A route missing from the table, or a view without a rule, fails the test.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import secrets
import uuid

from ledger.access.tokens import issue_token
from ledger.books.charts import load_chart
from ledger.books.entries import get_entry
from ledger.core.chart import Role
from ledger.db.models import Fund, User
from ledger.giving.donations import GiftRecord, record_donation
from ledger.giving.donors import create_donor
from ledger.giving.refunds import refund_donation
from ledger.grants.lifecycle import GrantRequest, request_grant
from ledger.payments.gifts import GiftForm, Payment, donation_page, gift_paid, start_gift
from ledger.reports.publishing import Period, latest_version, publish, series_of
from receipts.gift_aid import declare
from receipts.register import active_receipts
from tests.api.support import PASSWORD
from tests.builders import fresh_uscc

ROUTE_NEEDS = {
    ("people.Me", "GET"): "signed_in",
    ("sign_in.Tokens", "POST"): "public",
    ("people.CurrentToken", "DELETE"): "signed_in",
    ("people.Users", "POST"): "platform_admin",
    ("organisations.Organisations", "GET"): "public",
    ("organisations.Organisations", "POST"): "platform_admin",
    ("organisations.OrganisationItem", "GET"): "public",
    ("organisations.OrganisationItem", "PATCH"): "org_admin",
    ("organisations.Funds", "GET"): "public",
    ("organisations.Funds", "POST"): "org_admin",
    ("organisations.FundItem", "GET"): "public",
    ("organisations.FundItem", "PATCH"): "org_admin",
    ("organisations.Accounts", "GET"): "member_read",
    ("organisations.Accounts", "POST"): "org_admin",
    ("organisations.AccountItem", "PATCH"): "org_admin",
    ("organisations.Members", "GET"): "org_read",
    ("organisations.Members", "POST"): "org_admin",
    ("organisations.MemberItem", "DELETE"): "org_admin",
    ("organisations.Periods", "GET"): "member_read",
    ("organisations.PeriodClose", "POST"): "org_admin",
    ("organisations.PeriodReopen", "POST"): "org_admin",
    ("organisations.Integrity", "GET"): "org_read",
    ("organisations.AuditLog", "GET"): "org_read",
    ("gifts.Donors", "GET"): "member_read",
    ("gifts.Donors", "POST"): "member_write",
    ("gifts.DonorItem", "GET"): "member_read",
    ("gifts.Donations", "GET"): "fund_read",
    ("gifts.Donations", "POST"): "fund_write",
    ("gifts.DonationItem", "GET"): "fund_read",
    ("gifts.Refunds", "POST"): "fund_write",
    ("gifts.RefundCancellation", "POST"): "fund_write",
    ("grants.Grants", "GET"): "fund_read",
    ("grants.Grants", "POST"): "fund_write",
    ("grants.GrantItem", "GET"): "fund_read",
    ("grants.GrantApprovals", "POST"): "fund_write",
    ("grants.GrantPayments", "POST"): "fund_write",
    ("grants.GrantCancellation", "POST"): "fund_write",
    ("grants.GrantRejection", "POST"): "fund_write",
    ("journal.Entries", "GET"): "fund_read",
    ("journal.Entries", "POST"): "org_admin",
    ("journal.FundReleases", "POST"): "fund_write",
    ("journal.EntryItem", "GET"): "fund_read",
    ("journal.EntryReversal", "POST"): "fund_write",
    ("journal.Transfers", "GET"): "fund_read",
    ("journal.Transfers", "POST"): "fund_write",
    ("journal.TrialBalance", "GET"): "fund_read",
    ("journal.FundBalances", "GET"): "fund_read",
    ("journal.Statement", "GET"): "fund_read",
    ("gifts.OnlineGifts", "GET"): "fund_read",
    ("gifts.OnlineGiftResolution", "POST"): "fund_write",
    # Stripe's webhook: no token; the signature is its proof (tests/payments/test_stripe_webhook.py).
    ("webhooks.StripeEvents", "POST"): "public",
    # Receipts hold donors' names, addresses and tax ids: the organisation's readers; changes, its admins.
    ("receipts.Receipts", "GET"): "org_read",
    ("receipts.Receipts", "POST"): "fund_write",
    ("receipts.OneReceipt", "GET"): "org_read",
    ("receipts.ReceiptPdf", "GET"): "org_read",
    ("receipts.ReceiptVoid", "POST"): "org_admin",
    ("receipts.ReceiptReplacement", "POST"): "org_admin",
    ("receipts.ReceiptOfficialBill", "POST"): "org_admin",
    ("receipts.ReceiptSettings", "GET"): "org_read",
    ("receipts.ReceiptSettings", "PUT"): "org_admin",
    ("receipts.ReceiptKey", "GET"): "public",
    ("reports.Disclosure", "GET"): "public",
    ("reports.Reports", "GET"): "public",
    ("reports.Reports", "POST"): "org_admin",
    ("reports.Report", "GET"): "public",
    ("reconciliation.Mappings", "GET"): "member_read",
    ("reconciliation.MappingItem", "PUT"): "org_admin",
    ("reconciliation.Statements", "GET"): "org_read",
    ("reconciliation.Statements", "POST"): "org_admin",
    ("reconciliation.Lines", "GET"): "org_read",
    ("reconciliation.Suggestions", "GET"): "org_read",
    ("reconciliation.AutoMatch", "POST"): "org_admin",
    ("reconciliation.Matches", "POST"): "org_admin",
    ("reconciliation.Unmatch", "POST"): "org_admin",
    ("reconciliation.ReconciliationReport", "GET"): "org_read",
    ("reconciliation.EntryFromLine", "POST"): "org_admin",
    ("payouts.PayoutReconciliation", "GET"): "org_read",
    ("reconciliation_closes.ReconciliationClose", "POST"): "org_admin",
    ("reconciliation_closes.ReconciliationReportPdf", "GET"): "org_read",
    ("receipts.GiftAidDeclarations", "GET"): "member_read",
    ("receipts.GiftAidDeclarations", "POST"): "member_write",
    ("receipts.GiftAidCancellation", "POST"): "member_write",
}
# Routes outside the API proper: documentation and health, open to all and holding nothing private.
# The public pages (pages.static: their stylesheet and icon; giving: the donation pages) are not the API's:
# anyone may open them, and they show nothing private (tests/pages); a monthly gift's page is reached only by the
# signed link in its donor's email (tests/payments/test_stripe_monthly.py).
UNGUARDED = {"home.Home", "health.Health", "health.Live", "api-docs.openapi_json", "swagger_ui.show", "static",
             "pages.static", "giving.give", "giving.checkout", "giving.status", "giving.monthly", "verify.verify",
             "donor_receipts.mine", "donor_receipts.mine_pdf", "pages.organisation",
             "pages.fund", "verify.inclusion", "open_data.directory", "open_data.organisation_year",
             "open_data.fund_figures", "open_data.grants", "open_data.grants_360giving", "published.report_file"}
# The manager's screen (api/pages/manage.py) signs in by its session cookie, never a bearer token: each page names the
# need of the API's routes for the same reads and writes (None: any user signed in), which tests/pages/test_manage.py
# tries role by role.
MANAGER_PAGES = {"manage.sign_in": None, "manage.sign_out": None, "manage.home": None, "manage.account": "org_read",
                 "manage.report": "org_read", "manage.report_csv": "org_read", "manage.import_statement": "org_admin",
                 "manage.auto_match": "org_admin", "manage.match": "org_admin", "manage.unmatch": "org_admin",
                 "manage.entry_from_line": "org_admin", "manage.report_pdf": "org_read",
                 "manage.close_month": "org_admin"}

CALLERS = ("anonymous", "no_role", "platform_admin", "org_admin", "fund_manager", "auditor", "other_admin")
SCOPES = ("own_fund", "other_fund", "other_org")
ROLE_IN_ORG = {"org_admin": "org_admin", "fund_manager": "fund_manager", "auditor": "auditor"}
# Fund-scoped list routes: the scope's fund goes in the query.
FUND_QUERY = {"gifts.Donations", "gifts.OnlineGifts", "grants.Grants", "journal.Entries", "journal.Transfers",
              "journal.TrialBalance", "journal.Statement"}


def expected(need: str, caller: str, scope: str) -> bool:
    """Whether the caller may, by this file's reading of the roles."""
    if need == "public":
        return True
    if caller == "anonymous":
        return False
    if need == "signed_in":
        return True
    if caller == "platform_admin":
        return True
    if need == "platform_admin":
        return False
    in_other_org = "org_admin" if caller == "other_admin" else None
    role = in_other_org if scope == "other_org" else ROLE_IN_ORG.get(caller)
    if role is None:
        return False
    own = scope != "other_fund"
    return {
        "org_admin": role == "org_admin",
        "org_read": role in ("org_admin", "auditor"),
        "member_read": True,
        "member_write": role in ("org_admin", "fund_manager"),
        "fund_read": role in ("org_admin", "auditor") or (role == "fund_manager" and own),
        "fund_write": role == "org_admin" or (role == "fund_manager" and own),
    }[need]


def _objects(world) -> dict[str, dict]:
    """For each scope: the organisation, a fund, and a donation, grant, entry, donor and account in it. The
    grants are requested by second_admin, who never calls, so approving them is never the requester's."""

    def build(session):
        scopes = {}
        for scope, org, fund in (("own_fund", world.org, world.fund), ("other_fund", world.org, world.other_fund),
                                 ("other_org", world.other_org, world.foreign_fund)):
            donor = create_donor(session, org, kind="individual", name="王五", created_by="setup")
            donation = record_donation(session, org, GiftRecord(fund, 50_000, "CNY", "bank", dt.date(2026, 11, 2),
                                                                donor.id),
                                       idempotency_key=f"setup-{uuid.uuid4().hex}", recorded_by="setup")
            refund = refund_donation(session, org, donation.id, amount_minor=100, refunded_on=dt.date(2026, 11, 3),
                                     reason="", idempotency_key=f"setup-{uuid.uuid4().hex}", recorded_by="setup")
            grant = request_grant(session, org, GrantRequest(fund, 100, "CNY", "payee", "purpose",
                                                             "charitable_activities"),
                                  requested_by_user_id=world.users["second_admin"])
            fund_code = session.get(Fund, fund).code
            gift = start_gift(session, donation_page(session, org, fund_code),
                              GiftForm(5_000, "赵六", "zhao@example.org"), "demo")
            gift_paid(session, gift.token, Payment("pi_x", 4_000, "CNY", 0, dt.date(2026, 11, 2)), "setup")
            scopes[scope] = {"organisation_id": org, "fund_id": fund, "donation_id": donation.id,
                             "refund_id": refund.id, "grant_id": grant.id, "gift_id": gift.id,
                             "entry_id": get_entry(session, org, donation.entry_id).id,
                             "donor_id": donor.id, "account_id": load_chart(session, org).account(Role.BANK),
                             "revenue_account_id": load_chart(session, org).by_code["4901"],
                             "user_id": world.users["spare"], "year": 2020, "month": 1,
                             "receipt_id": active_receipts(session, donation.id)[0].id,
                             "report_id": _report(session, org), "name": "icbc", "match_id": 999_999,
                             "line_id": 999_999, "payout_id": "po_matrix",
                             "declaration_id": declare(session, org, donor.id, declared_on=dt.date(2026, 11, 1),
                                                       effective_from=None, created_by="setup").id}
        return scopes

    return world.db.write(build)


def _bodies(world, values: dict, spare_email: str) -> dict:
    fund, day = values["fund_id"], "2026-11-20"
    other = world.general if values["fund_id"] != world.foreign_fund else world.foreign_fund
    return {
        ("sign_in.Tokens", "POST"): {"email": spare_email, "password": PASSWORD},
        ("people.Users", "POST"): {"email": f"new-{uuid.uuid4().hex[:8]}@example.org", "password": PASSWORD},
        ("organisations.Organisations", "POST"): {
            "name": "新基金会", "kind": "foundation", "base_currency": "CNY", "jurisdiction": "CN",
            "registration_number": fresh_uscc()},
        ("organisations.OrganisationItem", "PATCH"): {"dual_approval_threshold_minor": None},
        ("organisations.Funds", "POST"): {"code": f"F{uuid.uuid4().hex[:6]}", "name": "新基金", "kind": "project",
                                          "restricted": False},
        ("organisations.FundItem", "PATCH"): {"status": "open"},
        ("organisations.Accounts", "POST"): {"code": f"1002.{uuid.uuid4().hex[:4]}", "name_zh": "银行存款—第二户",
                                             "name_en": "Second bank account", "type": "asset", "role": "bank"},
        ("organisations.AccountItem", "PATCH"): {"balance_limit": "credits_must_not_exceed_debits"},
        ("organisations.Members", "POST"): {"email": spare_email, "role": "auditor"},
        ("gifts.Donors", "POST"): {"name": "李四"},
        ("gifts.Donations", "POST"): {"fund_id": fund, "amount_minor": 1_000, "currency": "CNY", "channel": "bank",
                                      "received_on": day},
        ("gifts.Refunds", "POST"): {"amount_minor": 1, "refunded_on": day},
        ("grants.Grants", "POST"): {"fund_id": fund, "amount_minor": 100, "currency": "CNY", "payee": "p",
                                    "purpose": "p", "category": "management"},
        ("grants.GrantApprovals", "POST"): {},
        ("grants.GrantPayments", "POST"): {},
        ("grants.GrantCancellation", "POST"): {"reason": "the project was called off"},
        ("gifts.RefundCancellation", "POST"): {"reason": "recorded by mistake"},
        ("grants.GrantRejection", "POST"): {},
        ("gifts.OnlineGiftResolution", "POST"): {"decision": "reject", "note": "not a gift of ours"},
        ("receipts.Receipts", "POST"): {"donation_id": values["donation_id"]},
        ("receipts.ReceiptVoid", "POST"): {"reason": "issued to the wrong donor"},
        ("receipts.ReceiptReplacement", "POST"): {"reason": "the donor's address changed"},
        ("receipts.ReceiptOfficialBill", "POST"): {"bill_code": "51010126", "bill_number": uuid.uuid4().hex[:10],
                                                   "check_code": "a1b2c3", "issued_on": day},
        ("receipts.GiftAidDeclarations", "POST"): {"declared_on": day},
        ("receipts.GiftAidCancellation", "POST"): {"cancelled_on": day},
        ("receipts.ReceiptSettings", "PUT"): {"prefix": f"P{uuid.uuid4().hex[:8]}", "timing": "per_donation",
                                              "jurisdiction": "CN", "language": "zh-CN"},
        ("reports.Reports", "POST"): _fresh_period(),
        ("reconciliation.MappingItem", "PUT"): {"date": "交易日期", "debit": "借方发生额", "credit": "贷方发生额"},
        ("reconciliation_closes.ReconciliationClose", "POST"): {"account_id": values["account_id"], "year": 2020,
                                                                "month": 1},
        ("journal.EntryReversal", "POST"): {},
        ("journal.Entries", "POST"): {"effective_date": day, "description": "interest", "lines": [
            {"account_id": values["account_id"], "fund_id": fund, "side": "debit", "amount_minor": 1,
             "currency": "CNY"},
            {"account_id": values["revenue_account_id"], "fund_id": fund, "side": "credit", "amount_minor": 1,
             "currency": "CNY"}]},
        ("journal.FundReleases", "POST"): {"amount_minor": 1, "currency": "CNY", "effective_date": day},
        ("journal.Transfers", "POST"): {"from_fund_id": fund, "to_fund_id": other, "amount_minor": 1,
                                        "currency": "CNY", "effective_date": day},
    }


def _report(session, org: int) -> int:
    """A report of the organisation's January (published once, however many scopes share the organisation)."""
    period = Period(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    kept = latest_version(session, org, series_of(None, period))
    return kept.id if kept else publish(session, org, None, period, published_by="setup").id


def _fresh_period() -> dict:
    """A month no report covers yet (each allowed caller publishes one)."""
    year, month = 2000 + secrets.randbelow(25), 1 + secrets.randbelow(12)
    last = calendar.monthrange(year, month)[1]
    return {"period_start": f"{year}-{month:02d}-01", "period_end": f"{year}-{month:02d}-{last}",
            "fund_id": None}


def _path(rule: str, values: dict) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda match: str(values[match.group(1)]), rule)


def _api_routes(app) -> list[tuple[str, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return routes


def _declared_need(app, endpoint: str, method: str) -> str | None:
    view = app.view_functions[endpoint]
    handler = getattr(getattr(view, "view_class", None), method.lower(), None)
    need = getattr(handler, "need", None)
    return need.value if need is not None else None


def test_every_route_has_a_rule_and_it_is_the_one_this_table_expects(world):
    for endpoint, method, rule in _api_routes(world.app):
        if endpoint in UNGUARDED or endpoint in MANAGER_PAGES:
            continue
        assert (endpoint, method) in ROUTE_NEEDS, f"{method} {rule} is not in the authorization matrix"
        assert _declared_need(world.app, endpoint, method) == ROUTE_NEEDS[(endpoint, method)], (method, rule)
    assert {(e, m) for e, m, _ in _api_routes(world.app)} >= set(ROUTE_NEEDS), "the table names a route gone"


def test_every_manager_page_names_the_need_of_the_api_routes_it_stands_for(world):
    pages = {endpoint for endpoint, _method, _rule in _api_routes(world.app) if endpoint.startswith("manage.")}
    assert pages == set(MANAGER_PAGES)
    for endpoint, need in MANAGER_PAGES.items():
        declared = getattr(world.app.view_functions[endpoint], "need", None)
        assert (declared.value if declared is not None else None) == need, endpoint


def test_unguarded_routes_are_only_documentation_and_health(world):
    for endpoint, _method, rule in _api_routes(world.app):
        if endpoint in UNGUARDED:
            assert not rule.startswith("/api/v1"), rule


def _call(world, caller: str, method: str, path: str, body):
    if caller == "anonymous":
        return world.call(None, method, path, json=body, key=uuid.uuid4().hex)
    if path.endswith("/tokens/current"):  # revoking the caller's own token: give them a spare one to revoke
        token = world.db.write(lambda session: issue_token(session, world.users[caller], "matrix"))[0]
        return world.app.test_client().open(path, method=method, headers={"Authorization": f"Bearer {token}"})
    return world.call(caller, method, path, json=body, key=uuid.uuid4().hex)


def test_the_authorization_matrix(world):
    objects = _objects(world)
    spare_email = world.db.write(lambda session: session.get(User, world.users["spare"]).email)
    wrong = []
    for endpoint, method, rule in _api_routes(world.app):
        if endpoint in UNGUARDED or endpoint in MANAGER_PAGES:
            continue
        need = ROUTE_NEEDS[(endpoint, method)]
        for scope in SCOPES:
            values = objects[scope]
            path = _path(rule, values)
            if endpoint in FUND_QUERY and method == "GET":
                path += f"?fund_id={values['fund_id']}"
            body = _bodies(world, values, spare_email).get((endpoint, method)) if method != "GET" else None
            for caller in CALLERS:
                response = _call(world, caller, method, path, body)
                assert response.status_code < 500, (method, path, caller, response.get_data(as_text=True))
                denied = response.status_code in (401, 403) and response.json["code"] in ("unauthenticated",
                                                                                          "forbidden")
                if denied == expected(need, caller, scope):
                    wrong.append(f"{method} {path} as {caller} ({scope}): {response.status_code} "
                                 f"{response.get_data(as_text=True)[:160]}")
    assert not wrong, "\n".join(wrong)
